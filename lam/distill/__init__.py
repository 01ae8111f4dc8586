"""Distillation: teach the memory what full attention would have seen (training only).

Two stages, both training only the memory's parameters (so a one-segment text stays the teacher's):

``embed`` (``objectives.embedding_distillation_loss``): LAM on 508-token texts (two segments, the
memory carried) against the teacher's full-attention embedding of the same text.

``cloze`` (``objectives.passage_recall_loss``): documents of several segments from different pages
of one book must each retrieve the teacher's embedding of a passage of their own text among the
batch's (InfoNCE), plus the ``embed`` loss on their first 508 tokens.

Not imported by ``lam``; nothing here runs at inference time.
"""

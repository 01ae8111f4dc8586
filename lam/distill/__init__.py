"""Distillation: teach the memory what full attention would have seen (training only).

Three stages, all training only the memory's parameters (so a one-segment text stays the teacher's):

``embed`` (``objectives.embedding_distillation_loss``): LAM on 508-token texts (two segments, the
memory carried) against the teacher's full-attention embedding of the same text.

``cloze`` (``objectives.info_nce``): documents of several segments from different pages
of one book must each retrieve the teacher's embedding of a passage of their own text among the
batch's (InfoNCE), plus the ``embed`` loss on their first 508 tokens.

``retrieve`` (``objectives.info_nce``, ``objectives.idf_pooled_segments``): windows of QMSum train
meetings, pooled by segment IDF, must be found by the teacher's embedding of their query and of
its answer among the batch's, plus the ``embed`` loss on their first 508 tokens.

Not imported by ``lam``; nothing here runs at inference time.
"""

"""Distillation: teach the memory what full attention would have seen (training only).

Stage 1 — attention transfer (``objectives.attention_transfer_loss``). On the teacher's own
residual stream over 512 tokens, split into two 256-token segments A | B, the teacher's
full-attention context of B's queries minus their segment-local context is what B would have
received from A. The memory, written by A and read by B, is trained to supply exactly that,
layer by layer (all layers in one pass, LoLCATs style). Only memory parameters learn.

Stage 2 — end-to-end embedding distillation (``objectives.embedding_distillation_loss``):
LAM on 508-token texts (two segments + memory) against the teacher's full-attention
embedding of the same text.

Stage "chain" (``objectives.segment_means``): beyond the teacher's 512 positions, each segment
of a multi-segment text, read through the memory of everything before it, matches the
teacher's view of that segment with the previous segment in context.

Stage "long" (``objectives.passage_recall_loss``): documents that share one long context and
each hide a different sentence must retrieve the teacher embedding of their own sentence
(InfoNCE), plus the stage-2 loss on their first 508 tokens.

Not imported by ``lam``; nothing here runs at inference time.
"""

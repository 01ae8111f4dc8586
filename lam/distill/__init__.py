"""Distillation: teach the memory what full attention would have seen (training only).

Stage 1 — attention transfer (``objectives.attention_transfer_loss``). On the teacher's own
residual stream over 512 tokens, split into two 256-token segments A | B, the teacher's
full-attention context of B's queries minus their segment-local context is what B would have
received from A. The memory, written by A and read by B, is trained to supply exactly that,
layer by layer (all layers in one pass, LoLCATs style). Only memory parameters learn.

Stage 2 — end-to-end embedding distillation (``objectives.embedding_distillation_loss``):
LAM on 508-token texts (two segments + memory) against the teacher's full-attention
embedding of the same text.

Stage "long" (``objectives.passage_recall_loss``): beyond the teacher's 512 positions, a
multi-segment document's embedding must retrieve the teacher embedding of a passage taken
from it, against passages of the other documents in the batch (InfoNCE).

Not imported by ``lam``; nothing here runs at inference time.
"""

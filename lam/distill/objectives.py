"""The training losses. Each takes a LAM student and (frozen) teacher tensors."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lam.layers import masked_sum
from lam.layers.pooling import IDF_MIN_TEXT_TOKENS, segment_idf
from lam.model import LAMModel
from lam.runner import segment_states


@torch.no_grad()
def teacher_layer_inputs(teacher: LAMModel, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Inputs of every layer of the full-attention teacher (a LAMModel with W ≥ T, memory off)."""
    x = teacher.embeddings(ids)
    inputs = []
    for layer in teacher.layers:
        inputs.append(x)
        x, _ = layer(x, mask, None, False)
    return [*inputs, x]


def pooled_segments(
    student: LAMModel, segments: list[tuple[torch.Tensor, torch.Tensor]], prefixes: bool = False
) -> torch.Tensor | list[torch.Tensor]:
    """Token-mean embedding of aligned segment batches (every row has every segment), the memory
    carried across them (:func:`lam.runner.segment_states`).

    Training pools by the plain token mean (the ``"mean"`` pooling): the shipped pool is that
    mean for texts the teacher sees whole, and its redundancy gate stays open on natural text.
    With ``prefixes=True``, the list of embeddings of the text's first 1, 2, … S segments (the
    last one is the document's): one pass serves losses on a prefix and on the whole text.
    """
    states = segment_states(student, segments)
    embeddings = []
    for n in range(1 if prefixes else len(segments), len(segments) + 1):
        # each prefix sums its own segments (not shared partial sums): the gradients then
        # accumulate in the order the shipped weights were trained with, bit for bit
        embeddings.append(token_mean(states[:n], segments[:n]))
    return embeddings if prefixes else embeddings[-1]


def embedding_distillation_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """1 − cos(student, teacher), averaged over the batch."""
    return (1 - F.cosine_similarity(student_emb, teacher_emb, dim=-1)).mean()


def info_nce(anchor_emb: torch.Tensor, positive_emb: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE: each anchor ``[B, d]`` must pick its own positive (same row of ``[B, d]``) among
    the batch's, by cosine / τ.

    ``cloze``: anchors are the student's vectors of long documents, positives the teacher's
    vectors of a passage hidden in each (a good single vector for a long document is one from
    which each of its passages can be retrieved). Rows come in groups that share one book and
    differ by the passage, the hard negatives that make a mean-pooled vector fail: only a memory
    that carries the passage forward into later segments can separate them.
    ``retrieve``: anchors are the teacher's vectors of real queries (or their answers),
    positives the student's vectors of the meeting windows they are about; windows of one
    meeting are the hard negatives, other meetings the in-batch ones.
    """
    logits = F.normalize(anchor_emb, dim=-1) @ F.normalize(positive_emb, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def token_mean(states: list[torch.Tensor], segments: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Token mean ``[B, d]`` over aligned segment batches (the ``"mean"`` pooling), differentiable."""
    sums = [masked_sum(hidden, mask) for hidden, (_, mask) in zip(states, segments)]
    return sum(t for t, _ in sums) / sum(c for _, c in sums).unsqueeze(-1)


def idf_pooled_segments(
    states: list[torch.Tensor], segments: list[tuple[torch.Tensor, torch.Tensor]], vocab_size: int
) -> torch.Tensor:
    """Segment-IDF pool of aligned segment batches, differentiable in the hidden states:

        e = Σ_t u(v_t)·h_t / Σ_t u(v_t),   u(v) = max(0, log((1 + S) / (df(v) + c·S))),

    df(v) the number of the row's S segments holding id v (:mod:`lam.layers.pooling`, without
    the redundancy gate, which stays 1 on natural text). A row whose text is at most 510 tokens
    long, or whose every id drops out, keeps the plain mean.
    """
    B, S, device = segments[0][0].shape[0], len(segments), states[0].device
    df = torch.zeros(B, vocab_size, device=device)
    for ids, mask in segments:
        present = torch.zeros(B, vocab_size, device=device)
        present.scatter_add_(1, ids, mask.float())  # counts: an id may sit at real and padded positions
        df += present.gt(0).float()
    u = segment_idf(torch.tensor(float(S), device=device), df)
    total = torch.zeros(B, states[0].shape[-1], device=device)
    weight = torch.zeros(B, device=device)
    for hidden, (ids, mask) in zip(states, segments):
        w = torch.gather(u, 1, ids) * mask
        total = total + torch.einsum("btd,bt->bd", hidden, w)
        weight = weight + w.sum(1)
    body_tokens = sum(mask.sum(1) for _, mask in segments) - 2 * S
    idf_rows = (body_tokens > IDF_MIN_TEXT_TOKENS) & (weight > 0)
    return torch.where(
        idf_rows.unsqueeze(-1), total / weight.clamp(min=1e-12).unsqueeze(-1), token_mean(states, segments)
    )

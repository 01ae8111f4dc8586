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
        sums = [masked_sum(hidden, mask) for hidden, (_, mask) in zip(states[:n], segments[:n])]
        total, count = sum(t for t, _ in sums), sum(c for _, c in sums)
        embeddings.append(total / count.unsqueeze(-1))
    return embeddings if prefixes else embeddings[-1]


def embedding_distillation_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """1 − cos(student, teacher), averaged over the batch."""
    return (1 - F.cosine_similarity(student_emb, teacher_emb, dim=-1)).mean()


def passage_recall_loss(doc_emb: torch.Tensor, passage_emb: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE: each document embedding must pick the passage it contains among the batch's.

    The target for texts longer than the teacher's 512 positions: the teacher cannot embed
    the whole document, but it embeds any passage of it well; a good single vector for a long
    document is one from which each of its passages can be retrieved (the job of a long-document
    embedding in search). doc_emb ``[B, d]`` (student), passage_emb ``[B, d]`` (teacher).
    In training, rows come in groups that share one long context and differ only by the
    passage hidden in it (at a random place): the hard negatives that make a mean-pooled
    vector fail, because the shared context swamps the passage. Only a memory that carries
    the passage forward into later segments can separate them.
    """
    logits = F.normalize(doc_emb, dim=-1) @ F.normalize(passage_emb, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


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
    plain, tokens = torch.zeros_like(total), torch.zeros_like(weight)
    for hidden, (ids, mask) in zip(states, segments):
        w = torch.gather(u, 1, ids) * mask
        total = total + torch.einsum("btd,bt->bd", hidden, w)
        weight = weight + w.sum(1)
        t, n = masked_sum(hidden, mask)
        plain, tokens = plain + t, tokens + n
    idf_rows = (tokens - 2 * S > IDF_MIN_TEXT_TOKENS) & (weight > 0)
    return torch.where(
        idf_rows.unsqueeze(-1), total / weight.clamp(min=1e-12).unsqueeze(-1), plain / tokens.unsqueeze(-1)
    )


def query_retrieval_loss(doc_emb: torch.Tensor, query_emb: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE: each query (teacher embedding ``[B, d]``) must pick its document (student
    embedding ``[B, d]``, row for row) among the batch's. Rows come in groups of windows of one
    meeting, the hard negatives; the other meetings are the in-batch negatives."""
    logits = F.normalize(query_emb, dim=-1) @ F.normalize(doc_emb, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))

"""The training losses. Each takes a LAM student and (frozen) teacher tensors."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lam.layers import masked_sum, segment_idf_weights
from lam.model import LAMModel


@torch.no_grad()
def teacher_layer_inputs(teacher: LAMModel, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Inputs of every layer of the full-attention teacher (a LAMModel with W ≥ T, memory off)."""
    x = teacher.embeddings(ids)
    inputs = []
    for layer in teacher.layers:
        inputs.append(x)
        x, _ = layer(x, mask, None, False)
    return [*inputs, x]


def _heads(x: torch.Tensor, linear: torch.nn.Linear, H: int) -> torch.Tensor:
    B, T, _ = x.shape
    return linear(x).view(B, T, H, -1)


def attention_transfer_loss(
    student: LAMModel, layer_inputs: list[torch.Tensor], mask: torch.Tensor, split: int
) -> tuple[torch.Tensor, list[float]]:
    """Σ_l ‖read_l(B) − (full_l(B) − local_l(B))‖² / ‖full_l(B) − local_l(B)‖².

    ``layer_inputs[l]`` is the teacher's input to layer l over A | B (``split`` = len(A)).
    full_l(B) is softmax attention of B's queries over A and B; local_l(B) over B alone; the
    memory of layer l is written by A's tokens and read by B's queries.
    Returns the summed normalised loss and the per-layer values (for the log).
    """
    total, per_layer = 0.0, []
    for layer, x in zip(student.layers, layer_inputs):
        att, mem = layer.attention, layer.attention.memory
        H = att.num_heads
        with torch.no_grad():
            q, k, v = _heads(x, att.query, H), _heads(x, att.key, H), _heads(x, att.value, H)
            qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
            full = F.scaled_dot_product_attention(qt[:, :, split:], kt, vt, attn_mask=mask[:, None, None, :])
            local = F.scaled_dot_product_attention(
                qt[:, :, split:], kt[:, :, split:], vt[:, :, split:], attn_mask=mask[:, None, None, split:]
            )
            target = (full - local).transpose(1, 2)  # [B, T_B, H, D]
        state = mem.write(
            x[:, :split], k[:, :split], v[:, :split], mask[:, :split], mem.init_state(x.shape[0], x.device, x.dtype)
        )
        read = mem.read(q[:, split:], state)
        m = mask[:, split:, None, None].to(x.dtype)
        loss = ((read - target) ** 2 * m).sum() / ((target**2) * m).sum().clamp(min=1e-8)
        total = total + loss
        per_layer.append(float(loss.detach()))
    return total, per_layer


def _segment_states(student: LAMModel, segments: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Each segment's hidden states ``[B, T_s, d]``, the memory carried across all."""
    state, states = None, []
    for i, (ids, mask) in enumerate(segments):
        hidden, state = student.forward_segment(ids, mask, state, write_memory=i < len(segments) - 1)
        states.append(hidden)
    return states


def pooled_segments(
    student: LAMModel,
    segments: list[tuple[torch.Tensor, torch.Tensor]],
    prefixes: bool = False,
    token_idf: bool = False,
) -> torch.Tensor | list[torch.Tensor]:
    """Mean-pooled embedding of aligned segment batches (every row has every segment).

    The plain token mean: training leaves out the redundancy gate of
    :mod:`lam.layers.pooling`, which stays open on the natural training text anyway (held-out
    508-token windows: 1 − cos between the two segments ≥ 0.22 at the 5th percentile).
    ``token_idf=True`` weights tokens by segment IDF instead, with the student config's
    ``idf_passage_tokens``, ``idf_min_text_tokens`` and ``idf_df_offset``: the pool LAM ships with
    (``LAMConfig.token_idf``), so a loss on it trains the memory for the embedding users get.

    With ``prefixes=True``, the list of embeddings of the text's first 1, 2, … S segments (the
    last one is the document's), each pooled as that prefix alone would be (under IDF, with the
    prefix's own document frequencies): one pass serves losses on a prefix and on the whole text.
    """
    states = _segment_states(student, segments)
    ids, masks = [i for i, _ in segments], [m for _, m in segments]
    c = student.config
    embeddings = []
    for n in range(1 if prefixes else len(segments), len(segments) + 1):
        weights = (
            segment_idf_weights(ids[:n], masks[:n], c.idf_passage_tokens, c.idf_min_text_tokens, c.idf_df_offset)
            if token_idf
            else masks[:n]
        )
        sums = [masked_sum(hidden, u) for hidden, u in zip(states[:n], weights)]
        total, count = sum(t for t, _ in sums), sum(c for _, c in sums)
        embeddings.append(total / count.unsqueeze(-1))
    return embeddings if prefixes else embeddings[-1]


def segment_means(student: LAMModel, segments: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Each segment's own mean-pooled hidden state ``[B, d]``, the memory carried across all."""
    sums = [masked_sum(hidden, mask) for hidden, (_, mask) in zip(_segment_states(student, segments), segments)]
    return [total / count.unsqueeze(-1) for total, count in sums]


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

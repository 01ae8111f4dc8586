"""Pooling as running sums, so a document can be pooled one segment at a time.

Five poolings (``LAMConfig.pooling``):

``"gated-segment-mean"`` (the default, what the bundled model ships with): the segments' unit
token means û_s = m_s / ‖m_s‖, m_s = Σ_{t∈s} h_t / n_s, averaged under the redundancy gate below,

    e = Σ_s w_s·û_s / Σ_s w_s,    w_1 = 1,    w_s = min(1, (max(0, 1 − cos(û_s, Σ_{j<s} û_j)) / τ)^p):

a segment that repeats what the text already said (a filler, boilerplate) all but vanishes, so
a rare fact is not averaged away; fresh text keeps w = 1 (on the long documents of twelve kinds
the gate is under 1 for 7 % of the segments after the first). With the memory off this is the
teacher's chunk average (254-token chunks, exact attention in each; the last two evened out when
the last would be a sliver, see :mod:`lam.tokenization`) with repeated chunks dropped; a text of
one segment keeps its token mean's direction. Chosen on long
documents of twelve kinds: every candidate that read the trained memory or weighted tokens by
segment IDF lost to chunk averaging on some kind of document; the gate keeps chunk averaging's
scores there and lifts passkey retrieval (docs/research.md).

``"segment-mean"``: the same without the gate, e = (1/S) Σ_s û_s: exactly the teacher's chunk
average over the same segments when the memory is off.

``"weighted-segment-mean"``: the same unit segment means weighted by their token counts n_s
([CLS] and [SEP] included), e = Σ_s n_s·m_s/‖m_s‖ / Σ_s n_s: a short last segment weighs what
its tokens do, not as much as a full segment.

``"segment-idf"`` (lam-v1's, with its memory read). A document's embedding is a
weighted token mean over its segments s = 1…S,

    e = Σ_t u(v_t)·w_{s(t)}·h_t  /  Σ_t u(v_t)·w_{s(t)},

with two weights that need no corpus statistics and no training:

* a *redundancy gate* w_s that down-weights a segment repeating what the text already said,

      w_1 = 1,    w_s = min(1, (max(0, 1 − cos(x_s, Σ_{j<s} x_j)) / τ)^p),    x_s = Σ_{t∈s} h_t,

  τ = 0.15, p = 3. Fresh prose sits at 1 − cos ≈ 0.2–0.5, so its segments keep w = 1; a segment
  that restates earlier text (boilerplate, a repeated filler) has 1 − cos ≈ 0.01 and all but
  vanishes, so a rare fact is not averaged away by thousands of repeated tokens;
* *segment IDF* u(v), an inverse document frequency with the text's own segments as the
  documents, for texts of more than M = 510 text tokens (more than the teacher sees whole):

      u(v) = max(0, log((1 + S) / (df(v) + c·S))),    c = 0.2,

  df(v) the number of segments holding id v. Ids found in nearly every segment (speaker labels,
  fillers, [CLS]/[SEP]) drop out; the ids of one passage weigh log((1 + S)/(1 + c·S)). A text of
  at most M text tokens keeps u = 1 (the gated mean, so short-text embeddings are the teacher's
  mean pool), and so does a text whose every id would drop out (no embedding is ever 0/0).

``"mean"``: the plain token mean over the whole text, e = Σ_t h_t / n (the teacher's pool).

The state streams in O(1) memory in the length: three vectors per document, plus, for segment
IDF, Σ w·h, Σ w and df per distinct id (bounded by the vocabulary).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from lam.config import POOLINGS

REDUNDANCY_TAU = 0.15
REDUNDANCY_POWER = 3.0
IDF_MIN_TEXT_TOKENS = 510  # the teacher's 512 positions less [CLS] and [SEP]
IDF_DF_OFFSET = 0.2


def masked_sum(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_t m_t·h_t and Σ_t m_t over a segment: hidden ``[B, T, D]``, mask ``[B, T]``."""
    m = mask.to(hidden.dtype)
    return torch.einsum("btd,bt->bd", hidden, m), m.sum(dim=1)


def redundancy_weight(
    segment_sum: torch.Tensor, seen_sum: torch.Tensor, tau: float = REDUNDANCY_TAU, power: float = REDUNDANCY_POWER
) -> torch.Tensor:
    """w_s for a batch of segments ``[B, D]`` given Σ of everything before each ``[B, D]``.

    Rows with nothing seen yet (a first segment, ``seen_sum`` all zeros) get w = 1.
    """
    first = ~seen_sum.ne(0).any(dim=-1)
    novelty = (1 - F.cosine_similarity(segment_sum, seen_sum, dim=-1)).clamp(min=0)
    weight = (novelty / tau).pow(power).clamp(max=1)
    return torch.where(first, torch.ones_like(weight), weight)


def segment_idf(segments: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """u = max(0, log((1 + S) / (df + c·S)))."""
    return torch.log((1 + segments) / (df + IDF_DF_OFFSET * segments)).clamp(min=0)


class _IdStats:
    """One document's per-id running sums for segment IDF: Σ w·h, Σ w and df of each distinct id."""

    def __init__(self, dim: int, device: torch.device | str) -> None:
        self.slot: dict[int, int] = {}  # token id -> row of the tensors below
        self.hidden = torch.zeros(64, dim, device=device)
        self.weight = torch.zeros(64, device=device)
        self.df = torch.zeros(64, device=device)
        self.segments = 0
        self.body_tokens = 0  # text tokens so far ([CLS]/[SEP] excluded)

    def add(self, hidden: torch.Tensor, ids: torch.Tensor, w: torch.Tensor) -> None:
        """One segment's unpadded token states ``[T, D]`` and ids ``[T]``, gated by ``w``."""
        unique, inverse = torch.unique(ids, return_inverse=True)
        rows = []
        for v in unique.tolist():
            if v not in self.slot:
                self.slot[v] = len(self.slot)
            rows.append(self.slot[v])
        if len(self.slot) > self.hidden.shape[0]:  # grow by doubling: amortised O(1) per new id
            n = max(len(self.slot), 2 * self.hidden.shape[0])
            self.hidden = torch.cat(
                [self.hidden, self.hidden.new_zeros(n - self.hidden.shape[0], self.hidden.shape[1])]
            )
            self.weight = torch.cat([self.weight, self.weight.new_zeros(n - self.weight.shape[0])])
            self.df = torch.cat([self.df, self.df.new_zeros(n - self.df.shape[0])])
        rows_t = torch.tensor(rows, device=self.hidden.device)
        sums = torch.zeros(len(rows), hidden.shape[1], device=hidden.device, dtype=hidden.dtype)
        sums.index_add_(0, inverse, hidden)
        counts = torch.bincount(inverse, minlength=len(rows)).to(self.weight.dtype)
        self.hidden[rows_t] += w * sums.to(self.hidden.dtype)
        self.weight[rows_t] += w * counts
        self.df[rows_t] += 1  # each distinct id of this segment once
        self.segments += 1
        self.body_tokens += max(ids.shape[0] - 2, 0)

    def sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ_v u(v)·Σ w·h, Σ_v u(v)·Σ w): their ratio is the embedding."""
        n = len(self.slot)
        if n == 0:
            return self.hidden.new_zeros(self.hidden.shape[1]), self.weight.new_zeros(())
        if self.body_tokens <= IDF_MIN_TEXT_TOKENS:
            u = torch.ones_like(self.df[:n])
        else:
            u = segment_idf(torch.tensor(float(self.segments)).to(self.df), self.df[:n])
            if not bool((u * self.weight[:n]).sum() > 0):  # every id dropped out: the mean
                u = torch.ones_like(u)
        return u @ self.hidden[:n], u @ self.weight[:n]

    def clone(self) -> _IdStats:
        copy = _IdStats.__new__(_IdStats)
        copy.slot, copy.segments, copy.body_tokens = dict(self.slot), self.segments, self.body_tokens
        copy.hidden, copy.weight, copy.df = self.hidden.clone(), self.weight.clone(), self.df.clone()
        return copy


class RunningPool:
    """The pooled state of B documents under one of :data:`POOLINGS` (module docstring).

    :meth:`add` takes one segment's sums (and, for segment IDF, its token states and ids) for
    some of the documents; :meth:`sums` reads the pooled (total, weight) at any time, and
    :func:`lam.runner.to_embeddings` turns them into vectors.
    """

    def __init__(self, batch: int, dim: int, pooling: str = "segment-idf", device: torch.device | str = "cpu") -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        # "mean": Σ h and token counts; "segment-mean": Σ unit segment means and segments
        self.total = torch.zeros(batch, dim, device=device)
        self.count = torch.zeros(batch, device=device)
        self.seen = torch.zeros(batch, dim, device=device)  # for the gate: Σ h so far, or Σ û for gated-segment-mean
        self.ids = [_IdStats(dim, device) for _ in range(batch)] if pooling == "segment-idf" else None
        self.whole = torch.zeros(batch, dtype=torch.bool, device=device)  # one-segment documents (see add)

    def add(
        self,
        rows: torch.Tensor | list[int],
        segment_sum: torch.Tensor,
        segment_count: torch.Tensor,
        tokens: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        whole: list[bool] | None = None,
    ) -> None:
        """Pool one segment per listed document (``segment_sum [R, D]``, ``segment_count [R]``).

        ``tokens`` = (hidden ``[R, T, D]``, mask ``[R, T]``, ids ``[R, T]``), needed for segment IDF.
        ``whole[k]`` says row k's document is this one segment in all (its first and last): segment
        IDF leaves such a text its token mean (at most W − 2 ≤ M text tokens: u = 1; w₁ = 1), so
        it is pooled as the mean, without the per-id sums (most of the pooling's cost on short text).
        """
        rows = torch.as_tensor(rows, device=self.total.device)
        if self.pooling in ("segment-mean", "gated-segment-mean", "weighted-segment-mean"):
            unit = F.normalize(segment_sum / segment_count.clamp(min=1).unsqueeze(-1), dim=-1)
            if self.pooling == "weighted-segment-mean":
                weight = segment_count
            elif self.pooling == "gated-segment-mean":
                weight = redundancy_weight(unit, self.seen[rows])
                self.seen[rows] += unit
            else:
                weight = torch.ones_like(segment_count)
            self.total[rows] += weight.unsqueeze(-1) * unit
            self.count[rows] += weight
            return
        if self.pooling == "mean":
            self.total[rows] += segment_sum
            self.count[rows] += segment_count
            return
        if whole is not None and any(whole):
            flags = torch.as_tensor(whole, device=rows.device)
            one = rows[flags]
            self.total[one] += segment_sum[flags]
            self.count[one] += segment_count[flags]
            self.whole[one] = True
            if bool(flags.all()):
                return
            keep = ~flags
            rows, segment_sum, segment_count = rows[keep], segment_sum[keep], segment_count[keep]
            if tokens is not None:
                tokens = tuple(t[keep] for t in tokens)
        if tokens is None:
            raise ValueError("segment-idf pooling needs each segment's (hidden, mask, ids)")
        weight = redundancy_weight(segment_sum, self.seen[rows])  # the gated sums live per id in self.ids
        self.seen[rows] += segment_sum
        hidden, mask, ids = tokens
        for k, r in enumerate(rows.tolist()):
            m = mask[k].bool()
            self.ids[r].add(hidden[k][m].to(self.total.dtype), ids[k][m], weight[k])

    def clone(self) -> RunningPool:
        copy = RunningPool.__new__(RunningPool)
        copy.pooling = self.pooling
        copy.total, copy.count, copy.seen = self.total.clone(), self.count.clone(), self.seen.clone()
        copy.ids = None if self.ids is None else [s.clone() for s in self.ids]
        copy.whole = self.whole.clone()
        return copy

    def sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled (total ``[B, D]``, weight ``[B]``): ``total / weight`` is each embedding."""
        if self.ids is None:
            return self.total, self.count
        whole = self.whole.tolist()
        pairs = [(self.total[r], self.count[r]) if whole[r] else s.sums() for r, s in enumerate(self.ids)]
        return torch.stack([t for t, _ in pairs]), torch.stack([c for _, c in pairs])


def _reference_gates(vectors: list[torch.Tensor]) -> list[float]:
    """The redundancy gate w_s of each vector x_s against Σ_{j<s} x_j, in plain Python."""
    gates, seen = [], None
    for x in vectors:
        if seen is None:
            gates.append(1.0)
        else:
            cos = float(x @ seen) / (float(x.norm()) * float(seen.norm()))
            gates.append(min(1.0, (max(0.0, 1.0 - cos) / REDUNDANCY_TAU) ** REDUNDANCY_POWER))
        seen = x.clone() if seen is None else seen + x
    return gates


def pool_reference(segment_states: list[torch.Tensor], segment_ids: list[list[int]], pooling: str) -> torch.Tensor:
    """The pooled embedding (before normalisation) of one document, token by token in plain Python:
    ``segment_states[s]`` is ``[n_s, D]`` (unpadded), ``segment_ids[s]`` its ids, [CLS] first and [SEP]
    last. The obviously-correct twin of :class:`RunningPool`, for tests."""
    if pooling == "mean":
        return torch.cat(segment_states).sum(0) / sum(len(ids) for ids in segment_ids)
    if pooling == "segment-mean":
        units = [h.mean(0) / h.mean(0).norm() for h in segment_states]
        return sum(units) / len(units)
    if pooling == "weighted-segment-mean":
        units = [len(h) * h.mean(0) / h.mean(0).norm() for h in segment_states]
        return sum(units) / sum(len(h) for h in segment_states)
    if pooling == "gated-segment-mean":
        units = [h.mean(0) / h.mean(0).norm() for h in segment_states]
        gates = _reference_gates(units)
        return sum(w * u for w, u in zip(gates, units)) / sum(gates)
    gates = _reference_gates([h.sum(0) for h in segment_states])
    S = len(segment_ids)
    body = sum(max(len(ids) - 2, 0) for ids in segment_ids)
    holders: dict[int, int] = {}
    for ids in segment_ids:
        for v in set(ids):
            holders[v] = holders.get(v, 0) + 1
    if body <= IDF_MIN_TEXT_TOKENS:
        u = dict.fromkeys(holders, 1.0)
    else:
        u = {v: max(0.0, math.log((1 + S) / (df + IDF_DF_OFFSET * S))) for v, df in holders.items()}
        if sum(u[v] * w for ids, w in zip(segment_ids, gates) for v in ids) <= 0:  # every id dropped out
            u = dict.fromkeys(holders, 1.0)
    total, count = 0.0, 0.0
    for h, ids, w in zip(segment_states, segment_ids, gates):
        for t, v in enumerate(ids):
            total, count = total + u[v] * w * h[t], count + u[v] * w
    return total / count

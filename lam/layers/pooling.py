"""Pooling as running sums, so a document can be pooled one segment at a time.

A document's embedding is a weighted token mean over its segments s = 1…S,

    e = Σ_s w_s·Σ_{t∈s} h_t  /  Σ_s w_s·n_s,

with a *redundancy gate* w_s that down-weights a segment repeating what the text already said:

    w_1 = 1,    w_s = min(1, (max(0, 1 − cos(x_s, Σ_{j<s} x_j)) / τ)^p),    x_s = Σ_{t∈s} h_t.

Fresh prose sits far from the running mean (1 − cos ≈ 0.2–0.5 on held-out books and meeting
transcripts), so with τ = 0.15 and p = 3 its segments keep w = 1 and e is the plain token mean; a
segment that restates earlier text (boilerplate, a repeated filler) has 1 − cos ≈ 0.01 and
all but vanishes, so a rare fact is not averaged away by thousands of repeated tokens. A
one-segment text is never gated: short-text embeddings are the teacher's mean pool. τ = 0
turns the gate off. The state is three vectors per document, so it streams in O(1) memory.

*Segment IDF* (``token_idf=True``, session 16) also weights each token by how few of the
document's own segments its id occurs in, an inverse document frequency with the segments as
the documents:

    e = Σ_t u(v_t)·w_{s(t)}·h_t  /  Σ_t u(v_t)·w_{s(t)},    u(v) = log((1 + S) / df(v)),

df(v) the number of segments holding id v. With ``passage_tokens`` = P > 0 the documents of the
IDF are passages of P text tokens instead (body position b of a token → passage ⌊b / P⌋; a
segment's [CLS] and [SEP] go with its first and last text token): S = ⌈n / P⌉ for n text tokens,
df(v) the passages holding v. P = 510, the teacher's 512 positions less [CLS] and [SEP], keeps the
teacher's mean pool for every text the teacher can see whole. Ids in every segment (speaker labels, fillers,
[CLS]/[SEP]) get u = log(1 + 1/S) ≈ 1/S; ids of one passage get log(1 + S). It needs no corpus
statistics and no parameter. A one-segment text has u = log 2 for every id: exactly the mean pool,
so short-text embeddings do not change. Its state is bounded by the vocabulary, not the length:
per document and distinct id, Σ w·h, Σ w and df.

With ``df_offset`` = c > 0 (0: off) an id's df is counted as df(v) + c·S and u is clipped at 0,
u(v) = max(0, log((1 + S) / (df(v) + c·S))): ids in nearly every passage (a meeting's speaker
labels and fillers) drop out instead of keeping weight ≈ 1/S; a text whose every id drops out keeps
the mean (u = 1), so no embedding is ever 0/0.

With ``min_text_tokens`` = M > 0 (0: off) the IDF weighs only texts of more than M text tokens; a text of
at most M keeps the (gated) mean, u = 1. M = 510 with P = 0 (session 20) is the teacher's pool for
every text the teacher sees whole and segment-fine IDF beyond it, where passages of 510 would be
coarser than the segments the memory reads. The rule is applied when the pool is read, so a stream
that grows past M switches to the IDF at that point; the running sums are the same either way.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from lam.config import LAMConfig


def masked_sum(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_t m_t·h_t and Σ_t m_t over a segment: hidden ``[B, T, D]``, mask ``[B, T]``."""
    m = mask.to(hidden.dtype)
    return torch.einsum("btd,bt->bd", hidden, m), m.sum(dim=1)


def mean_pool(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """e = total / count, the pooled embedding from running (weighted) sums."""
    return total / count.clamp(min=1).unsqueeze(-1)


def redundancy_weight(segment_sum: torch.Tensor, seen_sum: torch.Tensor, tau: float, power: float) -> torch.Tensor:
    """w_s for a batch of segments ``[B, D]`` given Σ of everything before each ``[B, D]``.

    Rows with nothing seen yet (a first segment, ``seen_sum`` all zeros) get w = 1.
    """
    if tau <= 0:
        return torch.ones(segment_sum.shape[0], device=segment_sum.device, dtype=segment_sum.dtype)
    first = ~seen_sum.ne(0).any(dim=-1)
    novelty = (1 - F.cosine_similarity(segment_sum, seen_sum, dim=-1)).clamp(min=0)
    weight = (novelty / tau).pow(power).clamp(max=1)
    return torch.where(first, torch.ones_like(weight), weight)


def _passage_of(t: torch.Tensor, n: torch.Tensor, body_before: torch.Tensor | int, passage_tokens: int) -> torch.Tensor:
    """Passage of token t of a [CLS] text [SEP] segment of n tokens whose text starts at text
    position ``body_before``; [CLS] / [SEP] go with the segment's first / last text token. Broadcasts."""
    return (body_before + torch.minimum((t - 1).clamp(min=0), (n - 3).clamp(min=0))) // passage_tokens


def _idf(passages: torch.Tensor, df: torch.Tensor, df_offset: float) -> torch.Tensor:
    """u = max(0, log((1 + S) / (df + c·S))): S passages, df the passages holding each id, c = ``df_offset``."""
    u = torch.log((1 + passages) / (df + df_offset * passages))
    return u.clamp(min=0) if df_offset else u


def _passage_count(body_tokens: torch.Tensor | int, segments: torch.Tensor | int, passage_tokens: int) -> torch.Tensor:
    """S of the IDF: ⌈n / P⌉ passages of a text of n text tokens (at least 1), or its segments if P = 0."""
    if not passage_tokens:
        return torch.as_tensor(segments)
    return ((torch.as_tensor(body_tokens) + passage_tokens - 1) // passage_tokens).clamp(min=1)


class _IdStats:
    """One document's per-id running sums for segment IDF: Σ w·h, Σ w and df of each distinct id."""

    def __init__(
        self,
        dim: int,
        device: torch.device | str,
        passage_tokens: int = 0,
        min_text_tokens: int = 0,
        df_offset: float = 0.0,
    ) -> None:
        self.slot: dict[int, int] = {}  # token id -> row of the tensors below
        self.hidden = torch.zeros(64, dim, device=device)
        self.weight = torch.zeros(64, device=device)
        self.df = torch.zeros(64, device=device)
        self.last = torch.full((64,), -1, dtype=torch.long, device=device)  # last passage counted per id
        self.passage_tokens = passage_tokens
        self.min_text_tokens = min_text_tokens  # texts of at most this many text tokens: u = 1
        self.df_offset = df_offset
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
            self.last = torch.cat([self.last, self.last.new_full((n - self.last.shape[0],), -1)])
        rows_t = torch.tensor(rows, device=self.hidden.device)
        sums = torch.zeros(len(rows), hidden.shape[1], device=hidden.device, dtype=hidden.dtype)
        sums.index_add_(0, inverse, hidden)
        counts = torch.bincount(inverse, minlength=len(rows)).to(self.weight.dtype)
        self.hidden[rows_t] += w * sums.to(self.hidden.dtype)
        self.weight[rows_t] += w * counts
        n = ids.shape[0]
        if self.passage_tokens:
            t = torch.arange(n, device=ids.device)
            passage = _passage_of(t, torch.tensor(n, device=ids.device), self.body_tokens, self.passage_tokens)
        else:
            passage = torch.full((n,), self.segments, device=ids.device)
        pairs = torch.unique(torch.stack([inverse, passage]), dim=1)  # each (id, passage) once
        pair_rows, pair_passage = rows_t[pairs[0]], pairs[1]
        self.df.index_add_(0, pair_rows, (pair_passage > self.last[pair_rows]).to(self.df.dtype))
        self.last.scatter_reduce_(0, pair_rows, pair_passage, reduce="amax")
        self.segments += 1
        self.body_tokens += max(n - 2, 0)

    def sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ_v u(v)·Σ w·h, Σ_v u(v)·Σ w): their ratio is the embedding."""
        n = len(self.slot)
        if n == 0:
            return self.hidden.new_zeros(self.hidden.shape[1]), self.weight.new_zeros(())
        if self.min_text_tokens and self.body_tokens <= self.min_text_tokens:  # 0: IDF on every text
            u = torch.ones_like(self.df[:n])
        else:
            passages = _passage_count(self.body_tokens, self.segments, self.passage_tokens).to(self.df)
            u = _idf(passages, self.df[:n], self.df_offset)
            if not bool((u * self.weight[:n]).sum() > 0):  # every id dropped out (c > 0): the mean
                u = torch.ones_like(u)
        return u @ self.hidden[:n], u @ self.weight[:n]

    def clone(self) -> _IdStats:
        copy = _IdStats.__new__(_IdStats)
        copy.slot, copy.segments, copy.body_tokens = dict(self.slot), self.segments, self.body_tokens
        copy.passage_tokens, copy.min_text_tokens = self.passage_tokens, self.min_text_tokens
        copy.df_offset = self.df_offset
        copy.hidden, copy.weight, copy.df = self.hidden.clone(), self.weight.clone(), self.df.clone()
        copy.last = self.last.clone()
        return copy


class RunningPool:
    """The pooled state of B documents: Σ w·h (``total``), Σ w·n (``count``), Σ h (``seen``).

    :meth:`add` takes one segment's sums for some of the documents; :meth:`embeddings` reads
    the mean pool at any time. ``tau``/``power`` are the redundancy gate's (module docstring).
    With ``token_idf`` every :meth:`add` also needs the segment's token states, mask and ids,
    and the pool is the segment-IDF-weighted one (module docstring), with passages of
    ``passage_tokens`` text tokens (0: one passage per segment) and df offset ``idf_df_offset``, on
    texts of more than ``idf_min_text_tokens`` text tokens.
    """

    def __init__(
        self,
        batch: int,
        dim: int,
        tau: float,
        power: float,
        device: torch.device | str = "cpu",
        token_idf: bool = False,
        passage_tokens: int = 0,
        idf_min_text_tokens: int = 0,
        idf_df_offset: float = 0.0,
    ) -> None:
        self.tau, self.power = tau, power
        self.total = torch.zeros(batch, dim, device=device)
        self.count = torch.zeros(batch, device=device)
        self.seen = torch.zeros(batch, dim, device=device)
        self.ids = (
            [_IdStats(dim, device, passage_tokens, idf_min_text_tokens, idf_df_offset) for _ in range(batch)]
            if token_idf
            else None
        )

    @classmethod
    def for_config(cls, batch: int, config: LAMConfig, device: torch.device | str = "cpu") -> RunningPool:
        """The pool a model with ``config`` uses: its gate, segment IDF and passages."""
        return cls(
            batch,
            config.hidden_size,
            config.redundancy_tau,
            config.redundancy_power,
            device,
            config.token_idf,
            config.idf_passage_tokens,
            config.idf_min_text_tokens,
            config.idf_df_offset,
        )

    @property
    def token_idf(self) -> bool:
        return self.ids is not None

    def add(
        self,
        rows: torch.Tensor | list[int],
        segment_sum: torch.Tensor,
        segment_count: torch.Tensor,
        tokens: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """Pool one segment per listed document (``segment_sum [R, D]``, ``segment_count [R]``).

        ``tokens`` = (hidden ``[R, T, D]``, mask ``[R, T]``, ids ``[R, T]``), needed with ``token_idf``
        (ignored without it).
        """
        rows = torch.as_tensor(rows, device=self.total.device)
        weight = redundancy_weight(segment_sum, self.seen[rows], self.tau, self.power)
        self.total[rows] += weight.unsqueeze(-1) * segment_sum
        self.count[rows] += weight * segment_count
        self.seen[rows] += segment_sum
        if self.ids is not None:
            if tokens is None:
                raise ValueError("a token_idf pool needs each segment's (hidden, mask, ids)")
            hidden, mask, ids = tokens
            for k, r in enumerate(rows.tolist()):
                m = mask[k].bool()
                self.ids[r].add(hidden[k][m].to(self.total.dtype), ids[k][m], weight[k])

    def clone(self) -> RunningPool:
        copy = RunningPool.__new__(RunningPool)
        copy.tau, copy.power = self.tau, self.power
        copy.total, copy.count, copy.seen = self.total.clone(), self.count.clone(), self.seen.clone()
        copy.ids = None if self.ids is None else [s.clone() for s in self.ids]
        return copy

    def sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled (total ``[B, D]``, count ``[B]``): ``total / count`` is each embedding."""
        if self.ids is None:
            return self.total, self.count
        pairs = [s.sums() for s in self.ids]
        return torch.stack([t for t, _ in pairs]), torch.stack([c for _, c in pairs])

    def embeddings(self) -> torch.Tensor:
        total, count = self.sums()
        if self.ids is None:
            return mean_pool(total, count)
        return total / count.clamp(min=1e-12).unsqueeze(-1)  # u·w sums are not token counts


def segment_idf_weights(
    segment_ids: list[torch.Tensor],
    segment_masks: list[torch.Tensor],
    passage_tokens: int = 0,
    min_text_tokens: int = 0,
    df_offset: float = 0.0,
) -> list[torch.Tensor]:
    """u(v_t) of every token of B aligned documents (every row has all S segments), batched.

    ``segment_ids[s]`` / ``segment_masks[s]`` are ``[B, T_s]`` ([CLS] text [SEP], then padding);
    returns ``[B, T_s]`` weights, 0 on padding. The same u as :class:`RunningPool` with
    ``token_idf``, ``passage_tokens``, ``min_text_tokens`` and ``df_offset`` (module docstring), in a form that
    lets gradients through the pooled sums, so training can use the shipped pool.
    """
    device = segment_ids[0].device
    vocab = max(int(ids.max()) for ids in segment_ids) + 1
    lengths = [mask.sum(1) for mask in segment_masks]  # [B] tokens per segment, [CLS]/[SEP] included
    passages = []  # [B, T_s] passage index of every token
    body = torch.zeros_like(lengths[0])
    for s, (ids, n) in enumerate(zip(segment_ids, lengths)):
        if passage_tokens:
            t = torch.arange(ids.shape[1], device=device).unsqueeze(0)
            passages.append(_passage_of(t, n.unsqueeze(1), body.unsqueeze(1), passage_tokens))
        else:
            passages.append(torch.full_like(ids, s))
        body = body + (n - 2).clamp(min=0)
    n_passages = _passage_count(body, torch.full_like(body, len(segment_ids)), passage_tokens)
    width = int(max(int(p.max()) for p in passages)) + 1
    present = torch.zeros(body.shape[0], width * vocab, device=device)
    for ids, mask, p in zip(segment_ids, segment_masks, passages):
        present.scatter_reduce_(1, p * vocab + ids, mask.to(present.dtype), reduce="amax")
    df = present.view(body.shape[0], width, vocab).sum(1)
    S = n_passages.unsqueeze(1).to(df.dtype)
    u = [
        _idf(S, df.gather(1, ids).clamp(min=1), df_offset) * mask.to(df.dtype)
        for ids, mask in zip(segment_ids, segment_masks)
    ]
    dropped = sum(w.sum(1) for w in u) <= 0  # every id dropped out (c > 0): the mean
    short = ((body <= min_text_tokens) & (min_text_tokens > 0)) | dropped  # texts that keep the mean: u = 1
    return [torch.where(short.unsqueeze(1), mask.to(df.dtype), w) for w, mask in zip(u, segment_masks)]


def _reference_gate(x: torch.Tensor, seen: torch.Tensor | None, tau: float, power: float) -> float:
    """w_s of one segment in plain Python (the references' twin of :func:`redundancy_weight`)."""
    if seen is None or tau <= 0:
        return 1.0
    cos = float(x @ seen) / (float(x.norm()) * float(seen.norm()))
    return min(1.0, (max(0.0, 1.0 - cos) / tau) ** power)


def pool_reference(
    segment_sums: list[torch.Tensor], segment_counts: list[float], tau: float, power: float
) -> torch.Tensor:
    """The pooled embedding of one document, one segment at a time in plain Python (the
    obviously-correct twin of :class:`RunningPool`, for tests)."""
    total, count, seen = 0.0, 0.0, None
    for x, n in zip(segment_sums, segment_counts):
        w = _reference_gate(x, seen, tau, power)
        total, count = total + w * x, count + w * n
        seen = x.clone() if seen is None else seen + x
    return total / count


def segment_idf_reference(
    segment_states: list[torch.Tensor],
    segment_ids: list[list[int]],
    tau: float,
    power: float,
    passage_tokens: int = 0,
    min_text_tokens: int = 0,
    df_offset: float = 0.0,
) -> torch.Tensor:
    """The segment-IDF pool of one document, token by token in plain Python: ``segment_states[s]``
    is ``[n_s, D]`` (unpadded), ``segment_ids[s]`` its ids, [CLS] first and [SEP] last (the twin of
    ``RunningPool(token_idf=True, passage_tokens=..., idf_min_text_tokens=..., idf_df_offset=...)``)."""
    passage_of: list[list[int]] = []  # the passage of every token
    body = 0
    for s, ids in enumerate(segment_ids):
        n = len(ids)
        if passage_tokens:
            positions = [body + min(max(t - 1, 0), max(n - 3, 0)) for t in range(n)]
            passage_of.append([b // passage_tokens for b in positions])
        else:
            passage_of.append([s] * n)
        body += max(n - 2, 0)
    S = max(1, math.ceil(body / passage_tokens)) if passage_tokens else len(segment_ids)
    holders: dict[int, set[int]] = {}
    for ids, passages in zip(segment_ids, passage_of):
        for v, p in zip(ids, passages):
            holders.setdefault(v, set()).add(p)

    def idf(v: int) -> float:
        if 0 < min_text_tokens and body <= min_text_tokens:
            return 1.0
        u = math.log((1 + S) / (len(holders[v]) + df_offset * S))
        return max(0.0, u) if df_offset else u

    gates, seen = [], None
    for h in segment_states:
        x = h.sum(0)
        gates.append(_reference_gate(x, seen, tau, power))
        seen = x.clone() if seen is None else seen + x
    u = {v: idf(v) for ids in segment_ids for v in ids}
    if sum(u[v] * w for ids, w in zip(segment_ids, gates) for v in ids) <= 0:  # every id dropped out: the mean
        u = dict.fromkeys(u, 1.0)
    total, count = 0.0, 0.0
    for h, ids, w in zip(segment_states, segment_ids, gates):
        for t, v in enumerate(ids):
            total, count = total + u[v] * w * h[t], count + u[v] * w
    return total / count

"""Documents through the model, segment by segment: the one loop, and the one place where pooled
sums become vectors.

Every segment runs through all layers before the next starts, so only the per-layer memory
states and the running pool travel from one segment to the next: peak memory is fixed by the
segment length W, whatever the length of the text. Three forms of the loop, one step:

* :func:`pooled_sums`: a batch of documents (``encode``, the index); step s runs the s-th segment
  of every document that still has one, as one padded batch (documents whose text has ended drop
  out), or, when no layer reads the memory, the next few segments of each (they are independent
  then). :func:`pooled_sums_in_thread` runs it on a worker thread for the index.
* :class:`DocumentStream`: one text fed in pieces (``LAM.stream()``), the same segments as
  ``encode`` cuts, so the same embedding.
* :func:`segment_states`: aligned batches with gradients (training).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from lam.layers import RunningPool, masked_sum
from lam.model import LAMModel, MemoryState
from lam.threads import adapt as adapt_threads
from lam.tokenization import IncrementalTokenizer, TextSegmenter, check_unicode

_END = object()
# Segment rows per forward call when segments are independent (no memory read): four 256-token
# segments make [1024, 384] matmuls instead of [256, 384]; a forward pass ran 1.2x the tokens/s
# of one segment per call on 2 cores, eight no faster than four (docs/research.md).
ROWS_PER_STEP = 4


def to_embeddings(
    sums: torch.Tensor, weights: torch.Tensor, dim: int | None = None, normalize: bool = True
) -> torch.Tensor:
    """Pooled sums ``[N, D]`` and their weights ``[N]`` → embeddings ``[N, dim]``.

    ``dim`` keeps the first dimensions (Matryoshka truncation, before normalising).
    """
    emb = sums / weights.clamp(min=1e-12).unsqueeze(-1)
    if dim is not None:
        emb = emb[..., :dim]
    return F.normalize(emb, dim=-1) if normalize else emb


def check_output_dim(dim: int | None, full: int, name: str = "output_dim") -> int | None:
    """``dim`` if it is None or an int in [1, full], else a ValueError naming ``name``."""
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= full):
        raise ValueError(f"{name} must be an int in [1, {full}], got {dim!r}")
    return dim


def _step(
    model: LAMModel, ids: torch.Tensor, mask: torch.Tensor, state: MemoryState | None, write: bool
) -> tuple[torch.Tensor, torch.Tensor, MemoryState | None]:
    """One segment batch through every layer: (Σ hidden ``[B, D]``, token counts ``[B]``, hidden, new state)."""
    hidden, new_state = model.forward_segment(ids, mask, state, write)
    total, count = masked_sum(hidden, mask)
    return total, count, hidden, new_state


def pooled_sums(
    model: LAMModel,
    segmenter: TextSegmenter,
    documents: list[Iterator[list[int]]],
    max_batch_tokens: int = 32768,
    on_segment: Callable[[int], None] | None = None,
    on_step: Callable[[list[int], torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled sums and weights of each document (:func:`to_embeddings` makes the vectors);
    ``documents`` yield segment bodies (token ids without [CLS]/[SEP]), at least one each.

    ``max_batch_tokens`` bounds B × T of one forward call (larger batches are split), so an
    oversize batch costs time, never an out-of-memory crash.
    ``on_segment(n_tokens)`` is called after each step with its text tokens (progress bars).
    ``on_step(documents, segment_sums, segment_counts)`` receives each segment's Σ hidden and token
    count, row k belonging to document ``documents[k]``, every document's segments in order
    (passage vectors for the index).

    When no layer reads the memory, a document's segments are independent, so one forward call
    takes up to :data:`ROWS_PER_STEP` segments of the same documents (a long text runs four
    segments at a time: larger matmuls, fewer calls); the result is the same as one at a time.
    """
    B = len(documents)
    device = next(model.parameters()).device
    pool = RunningPool(B, model.config.hidden_size, model.config.pooling, device)
    state: MemoryState | None = None  # full-batch tensors, rows indexed by document
    active = list(range(B))
    current = [next(doc) for doc in documents]
    reads_memory = model.memory_is_read()  # a memory nobody reads is not worth writing
    first = True
    while active:
        take = 1 if reads_memory else -(-ROWS_PER_STEP // len(active))
        rounds: list[list[int]] = [list(active)]  # rounds[k]: the documents with a k-th segment in this step
        bodies = {i: [current[i]] for i in active}
        upcoming: dict[int, object] = {}  # each document's segment after this step (or _END)
        for i in active:
            nxt = next(documents[i], _END)
            while nxt is not _END and len(bodies[i]) < take:
                bodies[i].append(nxt)
                nxt = next(documents[i], _END)
            upcoming[i] = nxt
        while len(rounds) < take and any(len(bodies[i]) > len(rounds) for i in rounds[-1]):
            rounds.append([i for i in rounds[-1] if len(bodies[i]) > len(rounds)])
        write = reads_memory and any(u is not _END for u in upcoming.values())
        rows_of = torch.tensor([i for r in rounds for i in r], device=device)  # the forward batch, round by round
        starts = np.cumsum([0] + [len(r) for r in rounds]).tolist()  # round k is rows starts[k]:starts[k + 1]
        ids, mask = segmenter.frame([bodies[i][k] for k, r in enumerate(rounds) for i in r], device)
        # a document of one segment in all (cheap to pool)
        whole = [first and upcoming[i] is _END and len(bodies[i]) == 1 for r in rounds for i in r]
        step_state = None if state is None else [s[rows_of] for s in state]
        group = max(1, max_batch_tokens // ids.shape[1])
        sum_parts, count_parts, state_parts = [], [], []
        for g in range(0, len(rows_of), group):
            sl = slice(g, g + group)
            sub_state = None if step_state is None else [s[sl] for s in step_state]
            total, count, hidden, new_state = _step(model, ids[sl], mask[sl], sub_state, write)
            for lo, hi in pairwise(starts):  # one add per round: a document once, segments in order
                lo, hi = max(lo, g), min(hi, g + len(total))
                if lo < hi:
                    part = slice(lo - g, hi - g)
                    tokens = (hidden[part], mask[lo:hi], ids[lo:hi])
                    pool.add(rows_of[lo:hi], total[part], count[part], tokens, whole[lo:hi])
            sum_parts.append(total)
            count_parts.append(count)
            state_parts.append(new_state)
        if on_step is not None:
            sums, counts = torch.cat(sum_parts), torch.cat(count_parts)
            for r, (lo, hi) in zip(rounds, pairwise(starts)):
                on_step(r, sums[lo:hi], counts[lo:hi])
        if write:  # one round: rows_of == active
            new_rows = [torch.cat(layer_parts) for layer_parts in zip(*state_parts)]
            if state is None:
                state = [torch.zeros((B, *s.shape[1:]), device=device, dtype=s.dtype) for s in new_rows]
            for full, new in zip(state, new_rows):
                full[rows_of] = new
        if on_segment is not None:
            on_segment(int(mask.sum()) - 2 * mask.shape[0])  # text tokens: [CLS] and [SEP] left out
        adapt_threads()
        first = False
        active = [i for i in active if upcoming[i] is not _END]
        for i in active:
            current[i] = upcoming[i]
    return pool.sums()


class _Stopped(Exception):
    """The caller's ``on_step`` failed: the encoder thread stops at its next step."""


def pooled_sums_in_thread(
    model: LAMModel,
    segmenter: TextSegmenter,
    documents: list[Iterator[list[int]]],
    on_step: Callable[[list[int], torch.Tensor, torch.Tensor], None],
    executor: ThreadPoolExecutor | None = None,
    depth: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pooled_sums` on an ``executor``'s thread, with ``on_step`` called on this one.

    For consumers that allocate as they go (the index writes every passage to SQLite): the
    encoder's tensors then come from their thread's own malloc arena instead of sharing holes
    with the consumer's long-lived blocks (see :mod:`lam.heap`), and the consumer's work
    overlaps the next segment. Pass one long-lived single-thread executor for every call so
    that arena is warmed up once. At most ``depth`` steps wait in between, so memory stays
    bounded when the consumer is slower. An error on either side stops both and is raised here.
    """
    steps: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(rows: list[int], sums: torch.Tensor, counts: torch.Tensor) -> None:
        if stop.is_set():
            raise _Stopped
        steps.put(("step", (rows, sums, counts)))

    def encode() -> None:
        try:
            with torch.inference_mode():  # thread-local: the caller's mode does not carry over
                steps.put(("done", pooled_sums(model, segmenter, documents, on_step=hand_over)))
        except BaseException as exc:
            steps.put(("error", exc))

    own = executor is None
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lam-encoder") if own else executor
    running = executor.submit(encode)
    try:
        while True:
            kind, value = steps.get()
            if kind == "step":
                on_step(*value)
            elif kind == "done":
                return value
            else:
                raise value
    finally:
        stop.set()
        while not running.done():  # unblock a pending put, then let the encoder see ``stop``
            try:
                steps.get(timeout=0.05)
            except queue.Empty:
                pass
        if own:
            executor.shutdown()


class DocumentStream:
    """One text fed in pieces with :meth:`feed` (or :meth:`feed_file`); :meth:`embedding` at any time.

    Only the unfinished word, fewer than 2·W body ids (5·W when the memory is not read: segments
    then run four at a time, as ``encode`` runs them; one body waits for the text's last cut, see
    :meth:`TextSegmenter.last_lengths`), the per-layer memory states and the running
    pool are kept, whatever the length of the text. Feeding a text in any number of pieces gives
    the same embedding as ``LAM.encode`` on the whole text: both cut the same segments and run
    them in the same groups.
    """

    def __init__(self, model: LAMModel, segmenter: TextSegmenter, max_tokens: int | None = None) -> None:
        self._model = model
        self._segmenter = segmenter
        self._max_tokens = max_tokens
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far."""
        self._device = next(self._model.parameters()).device
        self._tokenizer = IncrementalTokenizer(self._segmenter.tokenizer)
        self._pending: list[int] = []  # body ids not yet run (≥ W − 2 once a segment has run)
        self._state: MemoryState | None = None
        self._pool = RunningPool(1, self._model.config.hidden_size, self._model.config.pooling, self._device)
        self._taken = 0  # text tokens accepted (for max_tokens)
        self._segments = 0

    @property
    def tokens(self) -> int:
        """Text tokens taken in so far (completed words only)."""
        return self._taken

    @property
    def segments(self) -> int:
        """Full segments already run through the model."""
        return self._segments

    def _take(self, ids: list[int]) -> None:
        if self._max_tokens is not None:
            ids = ids[: max(0, self._max_tokens - self._taken)]
        self._taken += len(ids)
        self._pending.extend(ids)

    @torch.inference_mode()
    def _run(
        self, pool: RunningPool, bodies: list[list[int]], state: MemoryState | None, write: bool
    ) -> MemoryState | None:
        """Segments through the model into ``pool``, in order; returns the new state. Several
        bodies run as one batch only when the memory is not read (they are independent then)."""
        ids, mask = self._segmenter.frame(bodies, self._device)
        write = write and self._model.memory_is_read()  # a memory nobody reads is not worth writing
        total, count, hidden, new_state = _step(self._model, ids, mask, state, write)
        for k in range(len(bodies)):
            pool.add([0], total[k : k + 1], count[k : k + 1], (hidden[k : k + 1], mask[k : k + 1], ids[k : k + 1]))
        return new_state

    def feed(self, text: str) -> DocumentStream:
        """Add the next piece of the text (any split point, even inside a word)."""
        if not isinstance(text, str):
            raise TypeError(f"feed() takes str, got {type(text).__name__}")
        check_unicode(text, "the piece fed")
        self._take(self._tokenizer.feed(text))
        body_len = self._segmenter.body_len
        n = self._together()
        # whole groups only, so the groups are encode's, and one body more held back for the last cut
        while len(self._pending) >= (n + 1) * body_len:
            bodies = [self._pending[k * body_len : (k + 1) * body_len] for k in range(n)]
            self._pending = self._pending[n * body_len :]
            adapt_threads()
            new_state = self._run(self._pool, bodies, self._state, write=True)
            self._state = new_state if new_state is not None else self._state
            self._segments += n
        return self

    def _together(self) -> int:
        """Segments per forward call: :data:`ROWS_PER_STEP` when they are independent (no memory read)."""
        return 1 if self._model.memory_is_read() else ROWS_PER_STEP

    def feed_file(self, path: str | Path, encoding: str = "utf-8", block_chars: int = 1 << 16) -> DocumentStream:
        """Feed a file of any size, read in blocks."""
        with open(path, encoding=encoding) as f:
            for block in iter(lambda: f.read(block_chars), ""):
                self.feed(block)
        return self

    def embedding(self, normalize: bool = True, output_dim: int | None = None) -> np.ndarray:
        """The embedding of everything fed so far (``[D]`` float32); the stream can go on."""
        dim = check_output_dim(output_dim, self._model.config.hidden_size)
        tail = self._tokenizer.peek()
        if self._max_tokens is not None:
            tail = tail[: max(0, self._max_tokens - self._taken)]
        rest = self._pending + tail
        bodies = list(self._segmenter.segments([rest]))  # the held-back body and the rest, cut as encode cuts
        pool, state, n = self._pool.clone(), self._state, self._together()
        for i in range(0, len(bodies), n):  # a scratch copy: the stream's own state is untouched
            state = self._run(pool, bodies[i : i + n], state, write=i + n < len(bodies))
        return to_embeddings(*pool.sums(), dim, normalize)[0].float().cpu().numpy()


def segment_states(model: LAMModel, segments: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Each segment's hidden states ``[B, T_s, d]`` for aligned batches (every row has every
    segment: ``segments[s]`` = (ids, mask)), the memory carried across all, gradients kept."""
    state, states = None, []
    for i, (ids, mask) in enumerate(segments):
        hidden, state = model.forward_segment(ids, mask, state, write_memory=i < len(segments) - 1)
        states.append(hidden)
    return states

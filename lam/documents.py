"""A batch of documents through the model, segment by segment.

Step s runs the s-th segment of every document that still has one, as one padded batch
(documents whose text has ended drop out), carrying each document's memory state and pooled
sum. Peak memory is O(batch × W), independent of the documents' lengths.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch

from lam.layers import RunningPool, masked_sum
from lam.model import LAMModel, MemoryState
from lam.tokenization import TextSegmenter

_END = object()


def pooled_sums(
    model: LAMModel,
    segmenter: TextSegmenter,
    documents: list[Iterator[list[int]]],
    max_batch_tokens: int = 32768,
    on_segment: Callable[[int], None] | None = None,
    on_step: Callable[[list[int], torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled Σ hidden and token counts for each document; ``documents`` yield segment bodies.

    The sums are the redundancy-gated ones of :class:`lam.layers.RunningPool`, so
    ``sums / counts`` is each document's embedding before normalisation.

    ``max_batch_tokens`` bounds B × T of one forward call (larger batches are split), so an
    oversize ``batch_size`` costs time, never an out-of-memory crash.
    ``on_segment(n_tokens)`` is called after each step (progress bars).
    ``on_step(documents, segment_sums, segment_counts)`` receives each step's per-segment Σ hidden
    and token counts, row k belonging to document ``documents[k]`` (passage vectors for the index).
    """
    B = len(documents)
    device = next(model.parameters()).device
    pool = RunningPool.for_config(B, model.config, device)
    state: MemoryState | None = None  # full-batch tensors, rows indexed by document
    active = list(range(B))
    current = [next(doc) for doc in documents]  # every document has at least one segment
    reads_memory = model.memory_is_read()  # a memory nobody reads is not worth writing
    while active:
        upcoming = [next(documents[i], _END) for i in active]
        write = reads_memory and any(u is not _END for u in upcoming)
        bodies = [current[i] for i in active]
        ids, mask = segmenter.frame(bodies, device)
        rows = torch.tensor(active, device=device)
        step_state = None if state is None else [s[rows] for s in state]
        group = max(1, max_batch_tokens // ids.shape[1])
        hidden_parts, state_parts = [], []
        for g in range(0, len(active), group):
            sl = slice(g, g + group)
            sub_state = None if step_state is None else [s[sl] for s in step_state]
            hidden, new_state = model.forward_segment(ids[sl], mask[sl], sub_state, write)
            total, count = masked_sum(hidden, mask[sl])
            pool.add(rows[sl], total, count, (hidden, mask[sl], ids[sl]))  # rows are pooled independently
            hidden_parts.append((total, count))
            state_parts.append(new_state)
        step_sums = torch.cat([p[0] for p in hidden_parts])
        step_counts = torch.cat([p[1] for p in hidden_parts])
        if on_step is not None:
            on_step(list(active), step_sums, step_counts)
        if write:
            new_rows = [torch.cat(layer_parts) for layer_parts in zip(*state_parts)]
            if state is None:
                state = [torch.zeros((B, *s.shape[1:]), device=device, dtype=s.dtype) for s in new_rows]
            for full, new in zip(state, new_rows):
                full[rows] = new
        if on_segment is not None:
            on_segment(int(mask.sum()))
        still = [(i, u) for i, u in zip(active, upcoming) if u is not _END]
        active = [i for i, _ in still]
        for i, u in still:
            current[i] = u
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

"""``LAM.stream()``: embed a text that arrives in pieces, in constant memory.

Only the unfinished word, fewer than W body ids, the per-layer memory states and the running
pooled sum are kept — whatever the length of the text. Feeding a text in any number of pieces
gives the same embedding as ``LAM.encode`` on the whole text: both cut the same segments.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from lam.layers import RunningPool, masked_sum
from lam.tokenization import IncrementalTokenizer, check_unicode

if TYPE_CHECKING:
    from lam.encoder import LAM


class LAMStream:
    """Feed text with :meth:`feed` (or :meth:`feed_file`); read :meth:`embedding` at any time."""

    def __init__(self, lam: LAM, max_tokens: int | None = None) -> None:
        self._lam = lam
        self._max_tokens = max_tokens
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far."""
        self._tokenizer = IncrementalTokenizer(self._lam.segmenter.tokenizer)
        self._pending: list[int] = []  # body ids not yet run (< W − 2 after each feed)
        self._state = None
        self._pool = RunningPool.for_config(1, self._lam.config, self._lam.device)
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
    def _run(self, body: list[int], state, write: bool):
        """One segment through the model: (Σ hidden ``[1, D]``, count ``[1]``, new state, token states)."""
        ids, mask = self._lam.segmenter.frame([body], self._lam.device)
        write = write and self._lam.model.memory_is_read()  # a memory nobody reads is not worth writing
        hidden, new_state = self._lam.model.forward_segment(ids, mask, state, write)
        total, count = masked_sum(hidden, mask)
        return total, count, new_state, (hidden, mask, ids)

    def feed(self, text: str) -> LAMStream:
        """Add the next piece of the text (any split point, even inside a word)."""
        if not isinstance(text, str):
            raise TypeError(f"feed() takes str, got {type(text).__name__}")
        check_unicode(text, "the piece fed")
        self._take(self._tokenizer.feed(text))
        body_len = self._lam.segmenter.body_len
        while len(self._pending) >= body_len:
            body, self._pending = self._pending[:body_len], self._pending[body_len:]
            total, count, new_state, tokens = self._run(body, self._state, write=True)
            self._pool.add([0], total, count, tokens)
            self._state = new_state if new_state is not None else self._state
            self._segments += 1
        return self

    def feed_file(self, path: str | Path, encoding: str = "utf-8", block_chars: int = 1 << 16) -> LAMStream:
        """Feed a file of any size, read in blocks."""
        with open(path, encoding=encoding) as f:
            for block in iter(lambda: f.read(block_chars), ""):
                self.feed(block)
        return self

    def embedding(self, normalize: bool = True, output_dim: int | None = None) -> np.ndarray:
        """The embedding of everything fed so far (``[D]`` float32); the stream can go on."""
        dim = self._lam._output_dim(output_dim, None)
        tail = self._tokenizer.peek()
        if self._max_tokens is not None:
            tail = tail[: max(0, self._max_tokens - self._taken)]
        rest = self._pending + tail
        body_len = self._lam.segmenter.body_len
        bodies = [rest[i : i + body_len] for i in range(0, len(rest), body_len)]
        if not bodies and self._segments == 0:
            bodies = [[]]  # an empty text is [CLS] [SEP]
        pool, state = self._pool.clone(), self._state
        for i, body in enumerate(bodies):  # a scratch copy: the stream's own state is untouched
            t, c, state, tokens = self._run(body, state, write=i < len(bodies) - 1)
            pool.add([0], t, c, tokens)
        emb = pool.embeddings()[0]
        if dim is not None:
            emb = emb[:dim]
        if normalize:
            emb = F.normalize(emb, dim=-1)
        return emb.float().cpu().numpy()

"""Text → token ids → segments, without ever holding a whole long text's tokens.

BERT's WordPiece pipeline (normalise, split on whitespace/punctuation, WordPiece) never
joins characters across ASCII whitespace, so tokenising a text in pieces cut right after a
space, tab or newline gives exactly the ids of tokenising it whole. :class:`IncrementalTokenizer`
relies on that to tokenise a text of any size piece by piece — the same code serves
``encode`` on a long string and ``LAM.stream()`` fed arbitrary fragments, so both agree.

A run of more than ``max_word_chars`` characters with no ASCII whitespace (not natural text;
BERT maps any word over 100 characters to [UNK] anyway) is cut every ``max_word_chars``
characters from its start, so the cut points depend on the text alone.

Segments: the body ids are cut into consecutive slices of W − 2 ids and each slice is framed
as [CLS] slice [SEP]; an empty text is the single segment [CLS] [SEP], as in BERT. No segment
of a longer text is a sliver: when the last slice would hold fewer than (W − 2) / 2 ids, the
last two slices share their ids evenly (:meth:`TextSegmenter.last_lengths`), so the last few
tokens of a text never make up a whole segment of its vector. A cutter therefore holds one
full slice back until the text ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer

_LAST_WHITESPACE = re.compile(r"[ \t\n\r](?=[^ \t\n\r]*\Z)")


def check_unicode(text: str, what: str = "text") -> str:
    """``text`` if it is valid Unicode; else a ValueError naming ``what`` and the position.

    A str can hold lone surrogates (JSON's ``"\\ud800"`` decodes to one) that no encoding can
    represent; the Rust tokeniser would fail on them with a bare TypeError.
    """
    if not text.isascii():  # fast path: ASCII is always valid
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"{what} is not valid Unicode: a lone surrogate at character {err.start}") from None
    return text


class IncrementalTokenizer:
    """Feed text fragments, get the ids of every word completed so far."""

    def __init__(self, tokenizer: Tokenizer, max_word_chars: int = 100_000) -> None:
        self._tokenizer = tokenizer
        self._max_word_chars = max_word_chars
        self._tail = ""  # text after the last cut: a (possibly unfinished) word
        self._pos = 0  # character offset of ``_tail`` in the whole text

    @property
    def position(self) -> int:
        """Character offset (in the whole text fed so far) of the first untokenised character."""
        return self._pos

    def _encode(self, text: str, spans: bool) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (and absolute character spans) of text starting at ``_pos`` whose end is a cut point.

        Over-long runs are cut every N characters; ``_pos`` moves past the text.
        """
        base, self._pos = self._pos, self._pos + len(text)
        if not text:
            return [], []
        n = self._max_word_chars
        parts, starts, last = [], [], 0
        if len(text) > n:
            for run in re.finditer(rf"[^ \t\n\r]{{{n + 1},}}", text):
                for cut in range(run.start() + n, run.end(), n):
                    parts.append(text[last:cut])
                    starts.append(last)
                    last = cut
        parts.append(text[last:])
        starts.append(last)
        if len(parts) == 1:
            encodings = [self._tokenizer.encode(text, add_special_tokens=False)]
        else:
            encodings = self._tokenizer.encode_batch(parts, add_special_tokens=False)
        ids = [i for e in encodings for i in e.ids]
        if not spans:
            return ids, []
        # tokenizers' offsets are character offsets into the part's original text
        return ids, [(base + s + a, base + s + b) for e, s in zip(encodings, starts) for a, b in e.offsets]

    def _feed(self, text: str, spans: bool) -> tuple[list[int], list[tuple[int, int]]]:
        buf = self._tail + text
        ready = ""
        match = _LAST_WHITESPACE.search(buf)
        if match:
            ready, buf = buf[: match.end()], buf[match.end() :]
        ids, offsets = self._encode(ready, spans)
        while len(buf) > self._max_word_chars:  # an endless "word": cut every N chars from its start
            more_ids, more_offsets = self._encode(buf[: self._max_word_chars], spans)
            ids += more_ids
            offsets += more_offsets
            buf = buf[self._max_word_chars :]
        self._tail = buf
        return ids, offsets

    def feed(self, text: str) -> list[int]:
        """Add a fragment; return the ids of text that can no longer change."""
        return self._feed(text, spans=False)[0]

    def feed_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """:meth:`feed`, also returning each id's ``(start, end)`` character span in the whole text."""
        return self._feed(text, spans=True)

    def peek(self) -> list[int]:
        """Ids of the unfinished tail, as if the text ended now (nothing is consumed)."""
        pos = self._pos
        ids = self._encode(self._tail, spans=False)[0]
        self._pos = pos
        return ids

    def flush(self) -> list[int]:
        """Ids of the tail; the tokenizer is empty afterwards."""
        return self._flush(spans=False)[0]

    def flush_spans(self) -> tuple[list[int], list[tuple[int, int]]]:
        """:meth:`flush` with character spans."""
        return self._flush(spans=True)

    def _flush(self, spans: bool) -> tuple[list[int], list[tuple[int, int]]]:
        out, self._tail = self._encode(self._tail, spans), ""
        return out


class TextSegmenter:
    """The tokenizer and the segment policy of a model: W tokens per segment, framed."""

    def __init__(self, tokenizer: Tokenizer, segment_len: int, cls_id: int, sep_id: int, pad_id: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.body_len = segment_len - 2
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.piece_chars = 1 << 16  # long texts are tokenised in pieces of about this size

    @classmethod
    def from_file(cls, path: str | Path, segment_len: int, cls_id: int, sep_id: int, pad_id: int) -> TextSegmenter:
        return cls(Tokenizer.from_file(str(path)), segment_len, cls_id, sep_id, pad_id)

    # --- ids ---
    def body_ids_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids (no special tokens) of short texts, tokenised in one parallel call."""
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def iter_body_ids(self, text: str) -> Iterator[list[int]]:
        """Ids of a text of any length, yielded piece by piece (bounded memory)."""
        inc = IncrementalTokenizer(self.tokenizer)
        for start in range(0, len(text), self.piece_chars):
            ids = inc.feed(text[start : start + self.piece_chars])
            if ids:
                yield ids
        tail = inc.flush()
        if tail:
            yield tail

    def count_tokens(self, text: str) -> int:
        """Real WordPiece tokens of the text (no special tokens)."""
        return sum(len(ids) for ids in self.iter_body_ids(text))

    # --- segments ---
    def last_lengths(self, n: int) -> list[int]:
        """Body lengths of the last segments of a text, from the ``n < 2(W − 2)`` ids left after
        its other segments (which hold ``W − 2`` each): one segment of ``n`` if they fit, else a
        full one and the rest, or, when the rest would be under half a segment, two halves.

        ``last_lengths(0) == [0]``: an empty text is one segment.
        """
        w = self.body_len
        if not 0 <= n < 2 * w:
            raise ValueError(f"the last segments hold 0 to {2 * w - 1} ids, not {n}")
        if n <= w:
            return [n]
        first = w if n - w >= w // 2 else (n + 1) // 2
        return [first, n - first]

    def segments(self, id_pieces: Iterable[list[int]], max_tokens: int | None = None) -> Iterator[list[int]]:
        """Cut a stream of body ids into segment bodies of ``W − 2`` ids, the last two evened out
        when the last would be a sliver (:meth:`last_lengths`).

        Always yields at least one (possibly empty) body. ``max_tokens`` truncates the text.
        """
        w = self.body_len
        buffer: list[int] = []
        taken = 0
        for ids in id_pieces:
            if max_tokens is not None:
                ids = ids[: max(0, max_tokens - taken)]
                taken += len(ids)
            buffer.extend(ids)
            while len(buffer) >= 2 * w:  # one full body held back: it may share with a short last one
                yield buffer[:w]
                del buffer[:w]
            if max_tokens is not None and taken >= max_tokens:
                break
        for n in self.last_lengths(len(buffer)):
            yield buffer[:n]
            del buffer[:n]

    def text_segments(self, text: str, max_tokens: int | None = None) -> Iterator[list[int]]:
        return self.segments(self.iter_body_ids(text), max_tokens)

    def frame(self, bodies: list[list[int]], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Bodies → ``input_ids [B, T]`` ([CLS] body [SEP] + padding) and ``mask [B, T]``."""
        T = max(len(b) for b in bodies) + 2
        ids = torch.full((len(bodies), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(bodies), T), dtype=torch.bool)
        for i, body in enumerate(bodies):
            n = len(body) + 2
            ids[i, :n] = torch.tensor([self.cls_id, *body, self.sep_id])
            mask[i, :n] = True
        return ids.to(device), mask.to(device)

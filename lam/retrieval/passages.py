"""Passages: the model's own segments, with the characters each one covers.

A passage is one segment body (W − 2 tokens, the last one shorter), so its vector is exactly
what the streaming encoder computes for that segment (contextualised by the memory of every
segment before it, when the model reads one), and the document vector pools its passages,
identical to ``LAM.encode``. Passages tile the text: each one runs from the end of the one
before (the first from 0) to the last character of its last token, so consecutive passages are
consecutive substrings (only whitespace after the last token is in none).

:func:`cut_passages` reads text as pieces (a string's slices, a file's blocks) and keeps only
the text of the passage being cut, so a text of any length is cut in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from lam.tokenization import IncrementalTokenizer, TextSegmenter


@dataclass
class Passage:
    """One segment of a document: ``text == document[start:end]``."""

    ordinal: int
    start: int
    end: int
    text: str
    n_tokens: int
    vector: np.ndarray | None = field(default=None, repr=False)  # unit-norm, float32


def text_pieces(text: str, piece_chars: int = 1 << 16) -> Iterator[str]:
    """A string as consecutive slices (the same cut points as ``TextSegmenter.iter_body_ids``)."""
    for start in range(0, len(text), piece_chars):
        yield text[start : start + piece_chars]


def file_pieces(path, encoding: str = "utf-8", block_chars: int = 1 << 16) -> Iterator[str]:
    """A text file read in blocks of characters."""
    with open(path, encoding=encoding) as f:
        yield from iter(lambda: f.read(block_chars), "")


def cut_passages(segmenter: TextSegmenter, pieces: Iterable[str]) -> Iterator[tuple[list[int], Passage]]:
    """``(segment body ids, passage)`` for a text given as pieces.

    The bodies are exactly ``segmenter.text_segments(text)`` (one empty body for an empty
    text), so vectors computed from them match ``LAM.encode`` of the whole text.
    """
    body_len = segmenter.body_len
    tokenizer = IncrementalTokenizer(segmenter.tokenizer)
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    text, text_base = "", 0  # the text from character ``text_base`` on: what is not yet cut
    ordinal = 0

    def cut(n: int) -> tuple[list[int], Passage]:
        nonlocal ordinal, text, text_base
        body, body_spans = ids[:n], spans[:n]
        del ids[:n], spans[:n]
        start = text_base  # the end of the previous passage: passages tile the text
        end = body_spans[-1][1] if body_spans else start
        passage = Passage(ordinal, start, end, text[start - text_base : end - text_base], len(body))
        ordinal += 1
        text, text_base = text[end - text_base :], end  # the cut text is no longer needed
        return body, passage

    for piece in pieces:
        if not isinstance(piece, str):
            raise TypeError(f"text pieces must be str, got {type(piece).__name__}")
        text += piece
        new_ids, new_spans = tokenizer.feed_spans(piece)
        ids += new_ids
        spans += new_spans
        while len(ids) >= 2 * body_len:  # one full body held back, as the segmenter does
            yield cut(body_len)
    new_ids, new_spans = tokenizer.flush_spans()
    ids += new_ids
    spans += new_spans
    while len(ids) >= 2 * body_len:
        yield cut(body_len)
    for n in segmenter.last_lengths(len(ids)):
        yield cut(n)

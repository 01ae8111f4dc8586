"""Passages are the model's segments, with exact character spans, cut in bounded memory."""

from __future__ import annotations

import random

import pytest

from lam.retrieval.passages import cut_passages, file_pieces, text_pieces
from lam.tokenization import IncrementalTokenizer

WORDS = ["héllo", "world,", "naïve", "café", "12345", "the", "pass-key", "日本語", "\n\n", "x" * 30, "end."]


def _text(n: int = 2500, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def test_feed_spans_are_character_offsets_of_each_token(shipped_lam):
    text = _text(400)
    tok = IncrementalTokenizer(shipped_lam.segmenter.tokenizer)
    ids, spans = [], []
    for piece in text_pieces(text, 13):  # cuts inside words and inside multi-byte characters' neighbours
        i, s = tok.feed_spans(piece)
        ids += i
        spans += s
    i, s = tok.flush_spans()
    ids += i
    spans += s
    whole = shipped_lam.segmenter.tokenizer.encode(text, add_special_tokens=False)
    assert ids == whole.ids
    assert spans == [tuple(o) for o in whole.offsets]


@pytest.mark.parametrize("piece_chars", [7, 100, 1 << 16])
@pytest.mark.parametrize("tail", [10, 200])
def test_passages_are_the_segments_and_spans_are_exact(shipped_lam, piece_chars, tail):
    seg = shipped_lam.segmenter
    ids = seg.body_ids_batch([_text()])[0]
    text = seg.tokenizer.decode(ids[: 3 * seg.body_len + tail])  # ends in a sliver, or does not
    out = list(cut_passages(seg, text_pieces(text, piece_chars)))
    assert [b for b, _ in out] == list(seg.text_segments(text))
    assert len(out) == 4 and min(p.n_tokens for _, p in out) >= seg.body_len // 2  # no sliver passage
    previous_end = 0
    for ordinal, (body, passage) in enumerate(out):
        assert passage.ordinal == ordinal
        assert passage.text == text[passage.start : passage.end]
        assert passage.n_tokens == len(body)
        assert passage.start == previous_end  # passages tile the text
        previous_end = passage.end
    assert previous_end == len(text.rstrip())


def test_file_pieces_give_the_same_passages(shipped_lam, tmp_path):
    text = _text(1200, seed=3)
    path = tmp_path / "doc.txt"
    path.write_text(text, encoding="utf-8")
    from_file = [(b, p.start, p.end) for b, p in cut_passages(shipped_lam.segmenter, file_pieces(path, block_chars=50))]
    from_text = [(b, p.start, p.end) for b, p in cut_passages(shipped_lam.segmenter, text_pieces(text))]
    assert from_file == from_text


def test_an_empty_text_is_one_empty_passage(shipped_lam):
    (body, passage), *rest = list(cut_passages(shipped_lam.segmenter, [""]))
    assert body == [] and passage.text == "" and not rest


def test_cutting_keeps_only_the_current_passage_text(shipped_lam):
    """Bounded memory: the buffered text never grows with the document."""
    text = _text(20000, seed=1)
    biggest = 0
    gen = cut_passages(shipped_lam.segmenter, text_pieces(text, 4096))
    for _ in gen:
        frame = gen.gi_frame
        if frame is not None:
            biggest = max(biggest, len(frame.f_locals["text"]))
    assert 0 < biggest < 4096 + 4 * 1024, biggest  # one piece plus about a passage, not the whole text


def test_non_str_pieces_are_rejected(shipped_lam):
    with pytest.raises(TypeError):
        list(cut_passages(shipped_lam.segmenter, [b"bytes"]))

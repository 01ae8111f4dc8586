"""Piecewise tokenisation is exact, and segments are framed and cut as documented."""

import itertools
import random

import pytest

from lam.tokenization import IncrementalTokenizer, TextSegmenter

SAMPLES = [
    "The cat sat on the mat.\nIt was, of course, a long day!\t Tabs\r\nand CRLF.",
    "Ünïcödé àccents, 日本語のテキスト, emoji 🙂 and punctuation:;--",
    "word" * 60 + " " + "x" * 150 + " end",  # an over-long word becomes [UNK]
    "   leading and trailing spaces   ",
    "",
]


@pytest.fixture(scope="module")
def tokenizer(shipped_lam):
    return shipped_lam.tokenizer


def pieces(text, n, rng):
    cuts = sorted(rng.sample(range(len(text) + 1), min(n, len(text) + 1)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("n_pieces", [1, 3, 17, 200])
def test_incremental_equals_whole(tokenizer, text, n_pieces):
    whole = tokenizer.encode(text, add_special_tokens=False).ids
    rng = random.Random(n_pieces)
    inc = IncrementalTokenizer(tokenizer)
    ids = []
    for p in pieces(text, n_pieces, rng):
        ids += inc.feed(p)
    ids += inc.flush()
    assert ids == whole


def test_endless_word_is_cut_at_fixed_points(tokenizer):
    text = "abc " + "z" * 2500 + " tail"
    outs = []
    for n in (1, 9, 400):
        inc = IncrementalTokenizer(tokenizer, max_word_chars=1000)
        ids = []
        for p in pieces(text, n, random.Random(n)):
            ids += inc.feed(p)
        outs.append(ids + inc.flush())
    assert outs[0] == outs[1] == outs[2]


def test_segments_cut_and_frame(tokenizer):
    seg = TextSegmenter(tokenizer, segment_len=6, cls_id=101, sep_id=102, pad_id=0)
    bodies = list(seg.segments([[1, 2, 3], [4, 5, 6, 7, 8, 9]]))
    assert bodies == [[1, 2, 3, 4], [5, 6, 7], [8, 9]]  # not [5, 6, 7, 8], [9]: no sliver at the end
    assert list(seg.segments([[1, 2, 3], [4, 5, 6, 7, 8, 9, 10]])) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert list(seg.segments([[1, 2, 3, 4]])) == [[1, 2, 3, 4]]  # no empty trailing segment
    assert list(seg.segments([])) == [[]]  # empty text: one [CLS] [SEP] segment
    assert list(seg.segments([[1, 2, 3], [4, 5, 6]], max_tokens=5)) == [[1, 2, 3], [4, 5]]
    ids, mask = seg.frame([[7, 8], []])
    assert ids.tolist() == [[101, 7, 8, 102], [101, 102, 0, 0]]
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]


def test_long_text_tokenised_in_pieces_matches_whole(tokenizer):
    seg = TextSegmenter(tokenizer, segment_len=256, cls_id=101, sep_id=102, pad_id=0)
    seg.piece_chars = 97  # force many pieces
    text = " ".join(SAMPLES[:2]) * 20
    assert [i for p in seg.iter_body_ids(text) for i in p] == tokenizer.encode(text, add_special_tokens=False).ids
    assert seg.count_tokens(text) == len(tokenizer.encode(text, add_special_tokens=False).ids)


@pytest.mark.parametrize("segment_len", [6, 7, 256])
def test_no_segment_is_a_sliver(tokenizer, segment_len):
    """Every text keeps the fixed cut's number of segments, all full but the last two, and none
    of a text longer than one segment holds fewer than half a segment's ids; the cut does not
    depend on how the ids arrive."""
    seg = TextSegmenter(tokenizer, segment_len=segment_len, cls_id=101, sep_id=102, pad_id=0)
    w = seg.body_len
    for n in range(0, 4 * w + 2):
        ids = list(range(n))
        bodies = list(seg.segments([ids]))
        assert [i for b in bodies for i in b] == ids
        assert len(bodies) == max(1, -(-n // w))  # as many as cutting every W − 2 ids
        assert all(len(b) == w for b in bodies[:-2])
        if n > w:
            assert min(len(b) for b in bodies) >= w // 2
        pieces = [ids[i : i + 3] for i in range(0, n, 3)]
        assert list(seg.segments(pieces)) == bodies
    with pytest.raises(ValueError):
        seg.last_lengths(2 * w)

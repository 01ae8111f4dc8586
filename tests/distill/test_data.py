"""Training data helpers: sibling windows of one book, passages of a window at word starts."""

import itertools
import random

import pytest

from lam import LAM
from lam.distill.data import continuation_ids, random_span, sibling_windows


@pytest.fixture(scope="module")
def segmenter():
    return LAM().segmenter


def test_random_span_is_a_whole_word_slice_of_the_window(segmenter):
    continuation = continuation_ids(segmenter)
    window = segmenter.body_ids_batch(["unbelievably interchangeable words " * 20])[0]
    rng = random.Random(0)
    for _ in range(50):
        span = random_span(window, 16, rng, continuation)
        assert len(span) == 16 and span[0] not in continuation
        assert any(window[p : p + 16] == span for p in range(len(window) - 15))


def test_sibling_windows_are_disjoint_pages_of_one_document(segmenter, monkeypatch):
    # Two synthetic books with disjoint vocabularies, every word numbered so positions are unique.
    books = {
        "apple": " ".join(f"apple{i}" for i in range(3000)),
        "river": " ".join(f"river{i}" for i in range(3000)),
    }
    monkeypatch.setattr("lam.distill.data.long_documents", lambda split: iter(books.items()))
    groups = list(sibling_windows(segmenter, 100, 3, "train", seed=0, slice_chars=40_000))
    assert len(groups) == 2
    for group, text in zip(groups, books.values()):
        assert len(group) == 3 and all(len(w) == 100 for w in group)
        book_ids = [i for piece in segmenter.iter_body_ids(text) for i in piece]
        starts = [next(p for p in range(len(book_ids)) if book_ids[p : p + 100] == w) for w in group]
        assert starts == sorted(starts) and all(b - a >= 100 for a, b in itertools.pairwise(starts))  # disjoint
    assert not list(sibling_windows(segmenter, 100, 10_000, "train"))  # too short a book: skipped

"""Training data helpers: passages hidden at word starts, sibling windows of one book, passages of a
window, pair sentences from train-side splits."""

import csv
import gzip
import itertools
import json
import random

import pytest

from lam import LAM
from lam.distill.data import (
    continuation_ids,
    hide_passage,
    pair_sentences,
    random_span,
    sibling_windows,
)
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def segmenter():
    return LAM().segmenter


def test_hide_passage_keeps_length_and_whole_words(segmenter):
    continuation = continuation_ids(segmenter)
    context = segmenter.body_ids_batch(["unbelievably interchangeable words " * 20])[0]
    passage = segmenter.body_ids_batch(["A cat sat on the mat."])[0]
    assert any(i in continuation for i in context)  # the context has mid-word positions to avoid
    rng = random.Random(0)
    for _ in range(50):
        doc = hide_passage(context, passage, rng, continuation)
        assert len(doc) == len(context)
        starts = [p for p in range(len(doc) - len(passage) + 1) if doc[p : p + len(passage)] == passage]
        assert starts, "the whole passage is inside the window"
        p = starts[0]
        assert doc[:p] == context[:p] and (p == len(doc) - len(passage) or doc[p + len(passage)] not in continuation)


@pytest.mark.skipif(not (SHARED_DATA / "nli").exists(), reason="needs ../shared/data")
def test_pair_sentences_are_distinct_train_side_sentences():
    sentences = pair_sentences(0)
    assert len(sentences) > 5000 and len(set(sentences)) == len(sentences)
    assert sentences != pair_sentences(1) and sorted(sentences) == sorted(pair_sentences(1))

    def sick(split):
        with open(SHARED_DATA / "sick" / f"{split}.csv", newline="", encoding="utf-8") as f:
            return {s.strip() for row in csv.DictReader(f) for s in (row["sentence1"], row["sentence2"])}

    test_only = sick("test") - sick("train")
    assert test_only and not test_only & set(sentences) - _snli_dev_sentences()  # no SICK test leaks in


def _snli_dev_sentences():
    with gzip.open(SHARED_DATA / "nli" / "snli_dev.jsonl.gz", "rt", encoding="utf-8") as f:
        return {s.strip() for line in f for s in (json.loads(line)["premise"], json.loads(line)["hypothesis"])}


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

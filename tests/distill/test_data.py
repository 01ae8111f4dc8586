"""Training data helpers: passages hidden at word starts, pair sentences from train-side splits."""

import csv
import gzip
import json
import random

import pytest

from lam import LAM
from lam.distill.data import continuation_ids, hide_passage, pair_sentences
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

"""Training data helpers: sibling windows of one book, passages of a window at word starts,
windows of a meeting around each query's relevant turns."""

import itertools
import json
import random

import pytest

from lam import LAM
from lam.distill.data import continuation_ids, meeting_query_windows, random_span, sibling_windows


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


def test_meeting_query_windows_hold_their_query_turns_and_not_the_others(segmenter, tmp_path, monkeypatch):
    # Meetings of 60 turns; turn t says "m<k>turn<t>word<j>" (10 ids per word), so every id run is unique.
    def meeting(k):
        turns = [" ".join(f"m{k}turn{t}word{j}" for j in range(3)) for t in range(60)]
        queries = [
            {"query": "about the meeting", "answer": "all of it", "relevant_text_span": "[]"},  # no span: unused
            {"query": f"q{k}a", "answer": f"a{k}a", "relevant_text_span": "[[2, 4]]"},
            {"query": f"q{k}b", "answer": f"a{k}b", "relevant_text_span": [[30, 33], [50, 50]]},  # list or JSON text
            {"query": f"q{k}c", "answer": f"a{k}c", "relevant_text_span": "[[45, 59]]"},
        ]
        return {"id": f"M{k}", "transcript": "\n".join(turns), "query_info": queries}

    (tmp_path / "qmsum").mkdir()
    (tmp_path / "qmsum" / "train.jsonl").write_text("".join(json.dumps(meeting(k)) + "\n" for k in range(5)))
    monkeypatch.setenv("LAM_DATA", str(tmp_path))
    n_tokens = 80
    groups = list(meeting_query_windows(segmenter, n_tokens, per_meeting=2, seed=0))
    assert len(groups) == 5 and sorted(g[0].meeting for g in groups) == [f"M{k}" for k in range(5)]
    for group in groups:
        k = group[0].meeting[1:]
        text = segmenter.tokenizer.decode
        spans = {f"q{k}a": [(2, 4)], f"q{k}b": [(30, 33), (50, 50)], f"q{k}c": [(45, 59)]}
        assert len({w.query for w in group}) == 2 and all(w.meeting == f"M{k}" for w in group)
        for w in group:
            assert len(w.ids) == n_tokens and w.answer == "a" + w.query[1:]
            words = text(w.ids).replace(" ", "")
            first = spans[w.query][0]
            held = [t for t in range(first[0], first[1] + 1) if f"turn{t}word" in words]
            assert held, "the window holds its query's first span"
            for other in group:
                if other is not w:
                    assert not any(f"turn{t}word" in words for a, b in spans[other.query] for t in range(a, b + 1)), (
                        "a window holds none of the other query's turns"
                    )
    assert list(meeting_query_windows(segmenter, n_tokens, 2, seed=0)) != list(
        meeting_query_windows(segmenter, n_tokens, 2, seed=1)
    )
    assert not list(meeting_query_windows(segmenter, 10_000, 2, seed=0))  # too short a meeting: skipped

"""The multi-genre long-document suite: L-Eval's pooled corpus, its queries, the per-genre summary."""

import pytest

from lam.evaluation.datasets import LEVAL_TASKS, load_leval
from lam.evaluation.report import markdown_table
from lam.evaluation.runner import run_evaluation, summarize_genres
from tests.conftest import SHARED_DATA

needs_leval = pytest.mark.skipif(not (SHARED_DATA / "leval").exists(), reason="needs ../shared/data/leval")


def test_each_genre_counts_once_whatever_its_variants():
    per_split = {
        "meetings/query": {"ndcg_at_10": 40.0},
        "meetings/answer": {"ndcg_at_10": 60.0},
        "news_summ/reference": {"ndcg_at_10": 80.0},
    }
    summary = summarize_genres(per_split)
    assert summary["per_genre"] == {"meetings": 50.0, "news_summ": 80.0}
    assert summary["mean_ndcg_at_10"] == 65.0  # not the mean of the three splits (60)
    assert summary["per_split"] is per_split


@needs_leval
@pytest.mark.parametrize("variant", ["question", "reference"])
def test_leval_pools_one_corpus_and_keeps_only_queries_that_identify_a_document(variant):
    splits = load_leval(variant)
    corpus = splits[0].corpus
    assert all(s.corpus is corpus for s in splits)  # one corpus object: embedded once
    assert len(corpus) == 176 and len(set(corpus.values())) == len(corpus)  # identical texts merged
    texts: dict[str, set[str]] = {}
    for split in splits:
        assert split.queries and split.info["genre"] in LEVAL_TASKS
        for qid, text in split.queries.items():
            assert text and len(split.qrels[qid]) == 1 and split.qrels[qid] <= corpus.keys()
            texts.setdefault(text, set()).update(split.qrels[qid])
    assert all(len(docs) == 1 for docs in texts.values())  # no generic query left
    genres = {s.info["genre"] for s in splits}
    if variant == "reference":
        assert genres == set(LEVAL_TASKS)
    else:  # the summary tasks ask one generic question of every document
        assert not genres & {"gov_report_summ", "news_summ", "patent_summ", "tv_show_summ"}


@needs_leval
def test_the_genres_suite_scores_every_kind_and_reports_them():
    pytest.importorskip("bm25s")
    record = run_evaluation(suites=("genres",), encoders=("bm25",), progress=False)
    genres = record["results"]["bm25"]["genres"]
    assert set(genres["per_genre"]) == {"meetings", *LEVAL_TASKS}
    assert genres["per_split"]["meetings/query"]["queries"] == 272
    assert 30 < genres["mean_ndcg_at_10"] < 100
    table = markdown_table(record)
    assert "| **mean** |" in table and "| tv_show_summ/reference | 14 |" in table


def test_bm25_scores_a_query_of_stop_words_as_zero():
    pytest.importorskip("bm25s")
    from lam.evaluation.encoders import BM25

    scores = BM25().score(["Is it?", "the budget meeting"], ["the budget was approved", "a meeting about it"])
    assert scores.shape == (2, 2) and not scores[0].any() and scores[1].any()

import numpy as np
import pytest

from lam.evaluation.metrics import ndcg_at_k, rank_documents, spearman


def test_ranking_by_score_then_doc_id_descending():
    ids = ["doc1", "doc10", "doc2"]
    order = rank_documents(np.array([[0.5, 0.5, 0.9]]), ids)
    assert [ids[j] for j in order[0]] == ["doc2", "doc10", "doc1"]  # "doc10" > "doc1" as strings


def test_all_tied_scores_pick_the_largest_id():
    ids = [f"doc{i}" for i in range(100)]
    scores = np.zeros((3, 100))
    relevant = [{"doc99"}, {"doc5"}, {"doc98"}]
    assert ndcg_at_k(scores, ids, relevant, 1) == pytest.approx(1 / 3)


def test_ndcg_values():
    ids = ["a", "b", "c", "d"]
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.9, 0.3]])
    relevant = [{"b"}, {"c"}]
    assert ndcg_at_k(scores, ids, relevant, 1) == pytest.approx(0.5)
    assert ndcg_at_k(scores, ids, relevant, 10) == pytest.approx((1 / np.log2(3) + 1) / 2)


def test_spearman_matches_definition():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)

"""mteb.evaluate runs LAM fully offline and agrees with `lam eval` to 1e-3."""

import os

import pytest

from tests.conftest import SHARED_DATA

mteb = pytest.importorskip("mteb")
pytestmark = pytest.mark.skipif(not (SHARED_DATA / "stsb").exists(), reason="needs ../shared/data")


def test_mteb_scores_equal_lam_eval(shipped_lam, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from lam.evaluation.datasets import load_sts
    from lam.evaluation.encoders import LAMEncoder
    from lam.evaluation.mteb_integration import LAMMtebEncoder, passkey_task, stsb_test_task
    from lam.evaluation.runner import score_retrieval, score_sts
    from lam.evaluation.synthetic import passkey_split

    encoder = LAMMtebEncoder(shipped_lam)
    assert not hasattr(encoder, "search") and not hasattr(encoder, "index")  # dense mode, explicitly
    result = mteb.evaluate(
        encoder, tasks=[stsb_test_task(), passkey_task(lengths=(512,))], cache=None, show_progress_bar=False
    )
    scores = {r.task_name: r.get_score() for r in result.task_results}

    ours = LAMEncoder()
    ours.model = shipped_lam
    assert scores["LAMLocalSTSBenchmark"] * 100 == pytest.approx(score_sts(ours, load_sts("stsb-test")), abs=0.1)
    assert scores["LAMLocalPasskeyRetrieval"] * 100 == pytest.approx(
        score_retrieval(ours, passkey_split(512))["ndcg_at_1"], abs=0.1
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_mteb_search_protocol_scores_the_engine_like_lam_eval(shipped_lam, monkeypatch):
    """mteb routes retrieval through the engine's index/search, and gets `lam eval`'s figure."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from mteb.models.models_protocols import SearchProtocol

    from lam.evaluation.encoders import LAMSearch
    from lam.evaluation.mteb_integration import LAMMtebSearch, needle_task
    from lam.evaluation.runner import score_retrieval
    from lam.evaluation.synthetic import needle_split

    engine = LAMMtebSearch(shipped_lam)
    assert isinstance(engine, SearchProtocol)
    assert engine.mteb_model_meta.name.endswith("-search")
    result = mteb.evaluate(engine, tasks=[needle_task(lengths=(256,), n_docs=30)], cache=None, show_progress_bar=False)
    score = result.task_results[0].get_score() * 100
    ours = LAMSearch()
    ours.model = shipped_lam
    assert score == pytest.approx(score_retrieval(ours, needle_split(256, n_docs=30))["ndcg_at_1"], abs=0.1)
    assert score >= 90  # the engine finds the needles (the dense encoder alone does not)

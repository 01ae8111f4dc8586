import json
from functools import partial

import pytest

from lam.evaluation.acceptance import LONGEMBED_PARTS, PARTS, measured_same, summarise
from lam.evaluation.parts import missing_parts, parts_to_run

FUSION = {"passage": 0.75, "document": 0.25, "lexical": 1.0, "document_lexical": 0.5}
POOL = {"token_idf": True, "idf_df_offset": 0.2}


def _record(part: str, sha: str, engine: float, bm25: float, fusion=FUSION) -> dict:
    def results(score: float) -> dict:
        if part == "qmsum":
            return {"qmsum": {v: {"ndcg_at_1": 0.0, "ndcg_at_10": score} for v in ("query", "answer")}}
        per_length = {L: {"ndcg_at_1": score, "ndcg_at_10": score} for L in part.split("-")}
        return {task: {"per_length": per_length, "mean_ndcg_at_1": score} for task in ("passkey", "needle")}

    return {
        "run": {"seconds": 10.0},
        "encoders": {"lam-search": {"weights_sha256": sha, "pool": POOL, **fusion}, "bm25": {}},
        "results": {"lam-search": results(engine), "bm25": results(bm25)},
    }


def test_a_part_counts_only_for_the_same_weights_pool_and_fusion(tmp_path):
    for part in PARTS:
        (tmp_path / f"{part}.json").write_text(json.dumps(_record(part, "aaa", 100, 90)))

    def missing(sha="aaa", pool=POOL, fusion=FUSION):
        return missing_parts(tmp_path, PARTS, partial(measured_same, weights_sha256=sha, pool=pool, fusion=fusion))

    assert missing() == []
    assert missing(sha="bbb") == list(PARTS)  # another rebuild: nothing reused
    assert missing(fusion={**FUSION, "document": 0.0}) == list(PARTS)
    assert missing(pool={**POOL, "idf_df_offset": 0.0}) == list(PARTS)  # same weights, other pool
    (tmp_path / "4096.json").unlink()
    assert missing() == ["4096"]


def test_summary_checks_every_floor():
    records = {part: _record(part, "a", 100, 90) for part in PARTS}
    summary = summarise(records)
    assert summary["accepted"] and summary["seconds"] == 10 * len(PARTS)
    lengths = {"256", "512", "1024", "2048", "4096", "8192", "16384", "32768"}
    assert set(summary["scores"]["lam-search"]["passkey"]) == lengths
    records[LONGEMBED_PARTS[-1]] = _record(LONGEMBED_PARTS[-1], "a", 98, 90)  # one length under 100
    assert not summarise(records)["floors"]["passkey"] and not summarise(records)["accepted"]
    records = {part: _record(part, "a", 100, 90) for part in PARTS}
    records["qmsum"] = _record("qmsum", "a", 94.9, 90)  # QMSum under BM25 + 5
    summary = summarise(records)
    assert summary["floors"]["passkey"] and not summary["floors"]["qmsum-answer"] and not summary["accepted"]


def test_only_and_limit_choose_among_the_missing_parts():
    missing = ["4096", "32768", "qmsum"]
    assert parts_to_run(missing, None, len(PARTS), PARTS) == missing
    assert parts_to_run(missing, ["32768", "256-512-1024-2048"], len(PARTS), PARTS) == ["32768"]  # measured: skipped
    assert parts_to_run(missing, None, 1, PARTS) == ["4096"]
    with pytest.raises(ValueError, match="unknown parts"):
        parts_to_run(missing, ["65536"], 1, PARTS)

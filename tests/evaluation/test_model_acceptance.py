import json

import pytest

from lam.evaluation import model_acceptance as ma
from lam.evaluation.parts import model_key
from lam.evaluation.synthetic import EVAL_SEED, LENGTHS, N_DOCS
from lam.persistence import configure_model
from tests.conftest import make_tiny_lam


def _scores(suites: tuple[str, ...], lengths: tuple[int, ...], value: float) -> dict:
    """Every figure of these suites equal to ``value`` (fidelity 0.98, above its floor)."""
    out: dict = {}
    if "sts" in suites:
        out["sts"] = {"stsb-test": value, "sickr-test": value}
    if "fidelity" in suites:
        out["fidelity"] = {"mean_cosine": 0.98, "texts": 128}
    if "qmsum" in suites:
        out["qmsum"] = {v: {"ndcg_at_1": 0.0, "ndcg_at_10": value} for v in ("query", "answer")}
    if "longembed" in suites:
        per = {str(L): {"ndcg_at_1": value, "ndcg_at_10": value} for L in lengths}
        out |= {t: {"per_length": per, "mean_ndcg_at_1": value} for t in ("passkey", "needle")}
    return out


def _record(part: str, sha: str = "aaa", pool: dict | None = None, value: float = 90.0) -> dict:
    spec = ma.MODEL_PARTS.get(part) or ma.BASELINE_PARTS[part]
    info = {"weights_sha256": sha, "pool": pool or {"token_idf": True}} if part in ma.MODEL_PARTS else {}
    return {
        "run": {
            "date": f"2026-12-05 10:{len(part):02d}:00",
            "git_commit": "abc",
            "machine": {"cpu": "test", "threads": 1, "torch": "x"},
            "suites": list(spec.suites),
            "lengths": list(spec.lengths),
            "n_docs": N_DOCS,
            "seed": EVAL_SEED,
            "seconds": 10.0,
        },
        "encoders": {name: info for name in spec.encoders},
        "results": {name: _scores(spec.suites, spec.lengths, value) for name in spec.encoders},
    }


def _all_records(lam_value: float = 90.0, chunk_mean: float = 40.0) -> dict[str, dict]:
    records = {part: _record(part, value=lam_value) for part in ma.MODEL_PARTS}
    return records | {part: _record(part, value=chunk_mean) for part in ma.BASELINE_PARTS}


def test_parts_cover_the_issue_once():
    lengths = [L for part in ma.MODEL_PARTS.values() if part.suites == ("longembed",) for L in part.lengths]
    assert sorted(lengths) == list(LENGTHS)  # lam at each of the eight lengths exactly once
    baseline_lengths = [L for p in ma.BASELINE_PARTS.values() if "longembed" in p.suites for L in p.lengths]
    assert sorted(baseline_lengths) == list(LENGTHS)
    encoders = {e for part in ma.MODEL_PARTS.values() for e in part.encoders}
    assert encoders == {"lam", "lam-memory-off", "lam-fast-only", "lam-slow-only"}


def test_model_parts_count_only_for_the_same_weights_and_pool():
    record = _record("short", sha="aaa", pool={"token_idf": True})
    assert ma.measured_model(record, "aaa", {"token_idf": True})
    assert not ma.measured_model(record, "bbb", {"token_idf": True})
    assert not ma.measured_model(record, "aaa", {"token_idf": False})
    record["encoders"]["lam-memory-off"]["weights_sha256"] = "bbb"  # one encoder of another rebuild
    assert not ma.measured_model(record, "aaa", {"token_idf": True})


def test_baseline_parts_count_for_the_evaluation_data_only():
    record = _record("baselines-16384-32768")
    assert ma.measured_baselines(record, "baselines-16384-32768")
    assert not ma.measured_baselines(record, "baselines-256-8192")  # other lengths
    assert not ma.measured_baselines({**record, "run": {**record["run"], "seed": 1}}, "baselines-16384-32768")
    fewer = {**record, "results": {"bm25": record["results"]["bm25"]}}
    assert not ma.measured_baselines(fewer, "baselines-16384-32768")


def test_merge_joins_lengths_and_recomputes_means():
    records = _all_records()
    records["32768"] = _record("32768", value=10.0)  # one length far below the rest
    merged = ma.merge_records(records)
    passkey = merged["results"]["lam"]["passkey"]
    assert list(passkey["per_length"]) == [str(L) for L in LENGTHS]
    assert passkey["mean_ndcg_at_1"] == pytest.approx((7 * 90 + 10) / 8)
    assert merged["run"]["lengths"] == list(LENGTHS)
    assert merged["run"]["seconds"] == 10.0 * len(records)
    assert set(merged["results"]) == {"lam", "lam-memory-off", "lam-fast-only", "lam-slow-only", *ma.BASELINES}


@pytest.mark.parametrize(
    ("floor", "breaks"),
    [
        ("stsb-test", lambda r: r["short"]["results"]["lam"]["sts"].update({"stsb-test": 82.02})),
        ("sickr-test", lambda r: r["short"]["results"]["lam"]["sts"].update({"sickr-test": 77.09})),
        ("fidelity", lambda r: r["short"]["results"]["lam"]["fidelity"].update({"mean_cosine": 0.969})),
        ("passkey", lambda r: r.update({"32768": _record("32768", value=0.0)})),  # 7 × 60 + 0 < 8 × 60
        (
            "qmsum-answer",
            lambda r: r["baselines"]["results"]["teacher-chunk-mean"]["qmsum"]["answer"].update({"ndcg_at_10": 85.01}),
        ),
    ],
)
def test_each_floor_can_fail(floor, breaks):
    records = _all_records(lam_value=90.0, chunk_mean=40.0)
    assert all(met for *_, met in ma.check_floors(ma.merge_records(records)).values())
    if floor == "passkey":
        records = {part: _record(part, value=60.0) for part in ma.MODEL_PARTS} | {
            part: _record(part, value=40.0) for part in ma.BASELINE_PARTS
        }
        records["short"]["results"]["lam"] = _scores(("sts", "fidelity", "qmsum"), (), 90.0)
    breaks(records)
    floors = ma.check_floors(ma.merge_records(records))
    assert [name for name, (*_, met) in floors.items() if not met] == [floor]


def test_main_runs_only_the_missing_parts_then_summarises(tmp_path, monkeypatch):
    folder = make_tiny_lam().save_pretrained(tmp_path / "model")
    configure_model(folder, idf_df_offset=0.2)
    sha, pool = model_key(str(folder))
    ran: list[str] = []

    def fake_run(part, model_path, progress):
        ran.append(part)
        record = _record(part, sha=sha, pool=pool, value=90.0 if part in ma.MODEL_PARTS else 40.0)
        return record

    monkeypatch.setattr(ma, "run_part", fake_run)
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        ma.main(["--model", str(folder), "--out", str(out), "--check"])
    assert exit_info.value.code == 1 and ran == []  # --check measures nothing
    ma.main(["--model", str(folder), "--out", str(out), "--only", "4096", "--only", "baselines"])
    assert ran == ["4096", "baselines"] and not (out / f"acceptance-{sha[:8]}" / "summary.json").exists()
    ma.main(["--model", str(folder), "--out", str(out)])
    assert sorted(ran) == sorted(ma.PARTS)  # each part measured once: the first two were kept
    summary = json.loads((out / f"acceptance-{sha[:8]}" / "summary.json").read_text())
    assert summary["accepted"] and summary["pool"]["idf_df_offset"] == 0.2
    assert (out / f"acceptance-{sha[:8]}" / "all.md").exists()
    configure_model(folder, idf_df_offset=0.1)  # same weights, another pool: the model parts are missing again
    with pytest.raises(SystemExit):
        ma.main(["--model", str(folder), "--out", str(out), "--check"])

"""The model acceptance of trained weights: every ``lam eval`` figure of the model card, in parts.

One ``lam eval`` run of the model against the baselines at LongEmbed's eight lengths takes 3–4 h
on a 2-core CPU, so the run is cut into parts (``scripts/parts.py``) that survive an interruption,
each an ordinary ``lam eval`` record on the same data (the evaluation seed, 100 documents a length):

- the model's parts, under ``<out>/acceptance-<sha256[:8]>-<memory>-<pooling>/`` and counted only
  for the same weights, memory setting and pooling: ``short`` (lam, and lam-memory-off when the
  model has a memory, on STS, fidelity and QMSum), ``ablations`` (a model with memory only: fast
  state only, slow state only on fidelity and QMSum) and lam's passkey and needle in five groups
  of lengths;
- the baselines' parts, which no weights change, under ``<out>/acceptance-baselines/``: the
  teacher (256-token truncation), teacher-chunk-mean and BM25 on STS and QMSum and at the eight
  lengths.

When every part is there the records are merged into one (``all.{json,md,png}``: the table
``lam eval`` prints for one run) and ``summary.{json,md}`` says which floors hold: STS-B test
≥ 82.03 and SICK-R ≥ 77.1, 512-token fidelity ≥ 0.97, passkey ≥ 60 and needle ≥ 50 averaged over
the eight lengths, and QMSum nDCG@10 (query and answer) ≥ teacher-chunk-mean + 5.

    python scripts/accept_model.py --model runs/polish/model
    OMP_NUM_THREADS=1 python scripts/accept_model.py --model ... --only 32768 &  # parts in parallel
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from parts import key_folder, load_parts, missing_parts, model_key, parts_to_run, same_model

from lam.evaluation.synthetic import EVAL_SEED, LENGTHS, N_DOCS

STSB_FLOOR, SICKR_FLOOR = 82.03, 77.1  # the teacher's own scores, as the issue writes them
FIDELITY_FLOOR = 0.97
PASSKEY_FLOOR, NEEDLE_FLOOR = 60.0, 50.0  # means over LongEmbed's eight lengths
QMSUM_MARGIN = 5.0  # over teacher-chunk-mean's nDCG@10
BASELINES = ("teacher", "teacher-chunk-mean", "bm25")
BASELINE_FOLDER = "acceptance-baselines"


@dataclass(frozen=True)
class Part:
    """One ``lam eval`` run: these encoders on these suites (at these lengths for longembed)."""

    encoders: tuple[str, ...]
    suites: tuple[str, ...]
    lengths: tuple[int, ...] = LENGTHS


def _longembed(encoders: tuple[str, ...], lengths: tuple[int, ...]) -> Part:
    return Part(encoders, ("longembed",), lengths)


LENGTH_GROUPS = ((256, 512, 1024, 2048), (4096,), (8192,), (16384,), (32768,))
MODEL_PARTS: dict[str, Part] = {
    "short": Part(("lam", "lam-memory-off"), ("sts", "fidelity", "qmsum")),
    "ablations": Part(("lam-fast-only", "lam-slow-only"), ("fidelity", "qmsum")),
    **{"-".join(map(str, g)): _longembed(("lam",), g) for g in LENGTH_GROUPS},
}


def model_parts(memory: bool) -> dict[str, Part]:
    """The parts of a model with or without memory: without, there is nothing to ablate and
    lam-memory-off is lam itself."""
    if memory:
        return MODEL_PARTS
    parts = {name: spec for name, spec in MODEL_PARTS.items() if name != "ablations"}
    return {**parts, "short": Part(("lam",), MODEL_PARTS["short"].suites)}


BASELINE_PARTS: dict[str, Part] = {
    "baselines": Part(BASELINES, ("sts", "qmsum")),
    "baselines-256-8192": _longembed(BASELINES, LENGTHS[:6]),
    "baselines-16384-32768": _longembed(BASELINES, LENGTHS[6:]),
}
PARTS = (*MODEL_PARTS, *BASELINE_PARTS)


def measured_model(record: dict, key: tuple[str, bool, str]) -> bool:
    """A model part counts when each of its encoders measured the model of this key."""
    infos = record.get("encoders", {})
    return bool(infos) and all(same_model(info, key) for info in infos.values())


def measured_baselines(record: dict, part: str) -> bool:
    """A baseline part counts when it ran the part's encoders on the evaluation's data."""
    run = record.get("run", {})
    expected = BASELINE_PARTS[part]
    return (
        run.get("seed") == EVAL_SEED
        and run.get("n_docs") == N_DOCS
        and set(record.get("results", {})) == set(expected.encoders)
        and ("longembed" not in expected.suites or run.get("lengths") == list(expected.lengths))
    )


def merge_records(records: dict[str, dict]) -> dict:
    """The parts as one ``lam eval`` record: results per encoder, passkey and needle per length with
    their means recomputed over the lengths present, the parts' runs kept under ``run.parts``."""
    results: dict[str, dict] = {}
    for record in records.values():
        for name, scores in record["results"].items():
            merged = results.setdefault(name, {})
            for suite, value in scores.items():
                if suite in ("passkey", "needle"):
                    merged.setdefault(suite, {"per_length": {}})["per_length"].update(value["per_length"])
                else:
                    merged[suite] = value
    for scores in results.values():
        for suite in ("passkey", "needle"):
            if suite in scores:
                per = scores[suite]["per_length"]
                scores[suite]["per_length"] = {L: per[L] for L in sorted(per, key=int)}
                scores[suite]["mean_ndcg_at_1"] = sum(v["ndcg_at_1"] for v in per.values()) / len(per)
    runs = {part: record["run"] for part, record in records.items()}
    latest = max(runs.values(), key=lambda run: run["date"])
    lengths = sorted({L for run in runs.values() if "longembed" in run["suites"] for L in run["lengths"]})
    return {
        "run": {
            **{k: latest[k] for k in ("date", "git_commit", "machine", "n_docs", "seed")},
            "suites": sorted({s for run in runs.values() for s in run["suites"]}),
            "lengths": lengths,
            "seconds": sum(run["seconds"] for run in runs.values()),
            "parts": runs,
        },
        "encoders": {name: info for record in records.values() for name, info in record["encoders"].items()},
        "results": results,
    }


def check_floors(merged: dict) -> dict:
    """The model's floors on a merged record: {floor: (measured, required, met)}."""
    lam, chunk_mean = merged["results"]["lam"], merged["results"]["teacher-chunk-mean"]
    measured = {
        "stsb-test": (lam["sts"]["stsb-test"], STSB_FLOOR),
        "sickr-test": (lam["sts"]["sickr-test"], SICKR_FLOOR),
        "fidelity": (lam["fidelity"]["mean_cosine"], FIDELITY_FLOOR),
        "passkey": (lam["passkey"]["mean_ndcg_at_1"], PASSKEY_FLOOR),
        "needle": (lam["needle"]["mean_ndcg_at_1"], NEEDLE_FLOOR),
        **{
            f"qmsum-{v}": (lam["qmsum"][v]["ndcg_at_10"], chunk_mean["qmsum"][v]["ndcg_at_10"] + QMSUM_MARGIN)
            for v in ("query", "answer")
        },
    }
    return {name: (value, floor, value >= floor) for name, (value, floor) in measured.items()}


def summary_markdown(floors: dict, merged: dict, weights_sha256: str) -> str:
    accepted = all(met for *_, met in floors.values())
    lines = [f"Model acceptance, weights sha256 {weights_sha256[:12]}…: accepted = {accepted}", ""]
    lines += ["| floor | measured | required | met |", "|---|---:|---:|---|"]
    for name, (value, floor, met) in floors.items():
        digits = 4 if name == "fidelity" else 2
        lines.append(f"| {name} | {value:.{digits}f} | {floor:.{digits}f} | {'yes' if met else 'NO'} |")
    if "lam-memory-off" in merged["results"]:
        fidelity_off = merged["results"]["lam-memory-off"]["fidelity"]["mean_cosine"]
        lines += ["", f"512-token fidelity with the memory off (same weights): {fidelity_off:.4f}."]
    lines.append("")
    lines += [f"Parts: {', '.join(merged['run']['parts'])}; {merged['run']['seconds']:.0f} s in all."]
    return "\n".join(lines) + "\n"


def run_part(spec: Part, model_path: str | None, progress: bool) -> dict:
    from lam.evaluation.runner import run_evaluation

    return run_evaluation(
        suites=spec.suites, encoders=spec.encoders, model_path=model_path, lengths=spec.lengths, progress=progress
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: bundled)")
    parser.add_argument("--out", default="results/distill")
    parser.add_argument("--parts", type=int, default=len(PARTS), help="run at most this many missing parts")
    parser.add_argument("--only", action="append", choices=PARTS, help="measure only this part (repeatable)")
    parser.add_argument("--check", action="store_true", help="run nothing; exit 1 unless all parts pass")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args(argv)

    from lam.evaluation.report import write_report

    key = model_key(args.model)
    sha = key[0]
    parts = {**model_parts(key[1]), **BASELINE_PARTS}
    folders = {"model": key_folder(args.out, key), "baselines": Path(args.out) / BASELINE_FOLDER}

    def folder(part: str) -> Path:
        return folders["model" if part in MODEL_PARTS else "baselines"]

    def counts(part: str, record: dict) -> bool:
        if part in MODEL_PARTS:
            return measured_model(record, key)
        return measured_baselines(record, part)

    def missing() -> list[str]:
        return [p for p in parts if missing_parts(folder(p), [p], partial(counts, p))]

    for part in [] if args.check else parts_to_run(missing(), args.only, args.parts, tuple(parts)):
        record = run_part(parts[part], args.model, args.progress)
        write_report(record, folder(part), part)
        print(f"{part}: {record['run']['seconds']:.0f} s", flush=True)
    left = missing()
    if left:
        print(f"{folders['model'].name}: parts left: {left}")
        if args.check:
            raise SystemExit(1)
        return
    model_names = [p for p in parts if p in MODEL_PARTS]
    records = {**load_parts(folders["model"], model_names), **load_parts(folders["baselines"], BASELINE_PARTS)}
    merged = merge_records(records)
    write_report(merged, folders["model"], "all")
    floors = check_floors(merged)
    accepted = all(met for *_, met in floors.values())
    summary = {"weights_sha256": sha, "memory": key[1], "pooling": key[2], "accepted": accepted, "floors": floors}
    (folders["model"] / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = summary_markdown(floors, merged, sha)
    (folders["model"] / "summary.md").write_text(text)
    print(text)
    if args.check and not accepted:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

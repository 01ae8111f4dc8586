"""The search acceptance of a model and its fusion weights, run in parts that survive an interruption.

The search engine with a read memory takes 1–3 h here for all of it (passkey and needle at
LongEmbed's 8 lengths, QMSum). So each part writes its own record under
``<out>/acceptance-<sha256[:8]>-<memory>-<pooling>/``, named after the model it measured, and a
part is skipped only when its record measured the same weights (sha256 of ``model.safetensors``),
memory setting and pooling, with the same fusion weights (scripts/parts.py).
Training is bit-for-bit deterministic on one machine type but not across them (AMX or not changes
the kernels), so parts measured on another rebuild are never mixed in. The model's own figures
have their parts in ``scripts/accept_model.py``.

    python scripts/accept_search.py --model runs/polish/model --fusion-weights 0.75,0.5,1,1

When every part is there it writes ``summary.{json,md}``: per length and QMSum, lam-search
against BM25, and whether the search floors hold (passkey 100 at every length, needle ≥ 99,
QMSum query and answer ≥ BM25 + 5).
"""

from __future__ import annotations

import argparse
import json
from functools import partial

from parts import key_folder, load_parts, missing_parts, model_key, parts_to_run, same_model
from tune_fusion import BM25_MARGIN

from lam.evaluation.synthetic import LENGTHS

LONGEMBED_PARTS = ("256-512-1024-2048", "4096", "8192", "16384", "32768")
PARTS = (*LONGEMBED_PARTS, "qmsum")
PASSKEY_FLOOR, NEEDLE_FLOOR = 100.0, 99.0


def measured_same(record: dict, key: tuple[str, bool, str], fusion: dict[str, float]) -> bool:
    """Whether a part's record measured the model of this key with these fusion weights."""
    info = record.get("encoders", {}).get("lam-search", {})
    return same_model(info, key) and all(info.get(k) == v for k, v in fusion.items())


def summarise(records: dict[str, dict]) -> dict:
    """Per-length nDCG@1 and QMSum nDCG@10 of lam-search and BM25 from the parts, and the floors."""
    table: dict[str, dict] = {"lam-search": {}, "bm25": {}}
    for name in table:
        for part in LONGEMBED_PARTS:
            results = records[part]["results"][name]
            for task in ("passkey", "needle"):
                for length, scores in results[task]["per_length"].items():
                    table[name].setdefault(task, {})[length] = scores["ndcg_at_1"]
        qmsum = records["qmsum"]["results"][name]["qmsum"]
        table[name]["qmsum"] = {variant: qmsum[variant]["ndcg_at_10"] for variant in ("query", "answer")}
    engine, bm25 = table["lam-search"], table["bm25"]
    floors = {
        "passkey": min(engine["passkey"].values()) >= PASSKEY_FLOOR,
        "needle": min(engine["needle"].values()) >= NEEDLE_FLOOR,
        **{f"qmsum-{v}": engine["qmsum"][v] >= bm25["qmsum"][v] + BM25_MARGIN for v in ("query", "answer")},
    }
    seconds = sum(r["run"]["seconds"] for r in records.values())
    return {"scores": table, "floors": floors, "accepted": all(floors.values()), "seconds": seconds}


def summary_markdown(summary: dict, key: tuple[str, bool, str]) -> str:
    scores = summary["scores"]
    lengths = sorted(scores["lam-search"]["passkey"], key=int)
    weights_sha256, memory, pooling = key
    model = f"weights sha256 {weights_sha256[:12]}…, memory {'on' if memory else 'off'}, {pooling} pooling"
    lines = [f"Search acceptance, {model}: accepted = {summary['accepted']}", ""]
    for task in ("passkey", "needle"):
        lines += [f"| {task} nDCG@1 | " + " | ".join(lengths) + " |", "|---|" + "---:|" * len(lengths)]
        lines += [f"| {n} | " + " | ".join(f"{scores[n][task][L]:.0f}" for L in lengths) + " |" for n in scores]
        lines.append("")
    lines += ["| QMSum nDCG@10 | query | answer |", "|---|---:|---:|"]
    lines += [f"| {n} | {scores[n]['qmsum']['query']:.2f} | {scores[n]['qmsum']['answer']:.2f} |" for n in scores]
    lines += ["", "Floors: " + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in summary["floors"].items())]
    lines.append(f"Seconds over all parts: {summary['seconds']:.0f}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: bundled)")
    parser.add_argument("--fusion-weights", default=None, metavar="P,D,L,DL", help="default: the library's")
    parser.add_argument("--out", default="results/retrieval")
    parser.add_argument("--parts", type=int, default=len(PARTS), help="run at most this many missing parts")
    parser.add_argument("--only", action="append", choices=PARTS, help="measure only this part (repeatable)")
    parser.add_argument("--check", action="store_true", help="run nothing; exit 1 unless all parts pass")
    args = parser.parse_args(argv)

    from lam.evaluation.report import write_report
    from lam.evaluation.runner import run_evaluation
    from lam.retrieval import DEFAULT_WEIGHTS, FusionWeights

    weights = FusionWeights.parse(args.fusion_weights) if args.fusion_weights else DEFAULT_WEIGHTS
    key = model_key(args.model)
    folder = key_folder(args.out, key)
    matches = partial(measured_same, key=key, fusion=weights.as_dict())
    todo = missing_parts(folder, PARTS, matches)
    for part in [] if args.check else parts_to_run(todo, args.only, args.parts, PARTS):
        suites = ("qmsum",) if part == "qmsum" else ("longembed",)
        lengths = LENGTHS if part == "qmsum" else tuple(int(x) for x in part.split("-"))
        record = run_evaluation(
            suites=suites,
            encoders=("lam-search", "bm25"),
            model_path=args.model,
            lengths=lengths,
            fusion_weights=weights,
        )
        write_report(record, folder, part)
        print(f"{part}: {record['run']['seconds']:.0f} s", flush=True)
    left = missing_parts(folder, PARTS, matches)
    if left:
        print(f"{folder.name}: parts left: {left}")
        raise SystemExit(1 if args.check else 0)
    summary = summarise(load_parts(folder, PARTS))
    sha, memory, pooling = key
    record = {"weights_sha256": sha, "memory": memory, "pooling": pooling, **summary}
    (folder / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    (folder / "summary.md").write_text(summary_markdown(summary, key))
    print(summary_markdown(summary, key))
    if args.check and not summary["accepted"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

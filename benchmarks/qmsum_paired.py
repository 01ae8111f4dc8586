"""QMSum val (dev): is one model's gain over another real? A paired bootstrap over the queries.

    python benchmarks/qmsum_paired.py --model - --model runs/cloze-150/model --model runs/cloze-210/model

Each model (``-``: the bundled weights) embeds the transcripts with ``encode`` (one vector per
meeting, exactly what users get) and the queries with ``encode_query``; nDCG@10 is computed per
query, for both query variants. Every later model is compared with the first on the same
queries: the mean difference and its 95% interval from 2,000 paired bootstrap resamples (fixed
seed). An interval that excludes 0 is a difference the 272 queries can tell apart.

Writes results/distill/qmsum-paired.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lam import LAM
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.metrics import ndcg_per_query

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


def paired_interval(diff: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(resamples)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model folder, or - for the bundled")
    args = parser.parse_args()
    variants = {v: load_qmsum(v) for v in ("query", "answer")}
    doc_ids = list(variants["query"].corpus)
    per_query: dict[str, dict[str, np.ndarray]] = {}
    for path in args.model:
        lam = LAM(None if path == "-" else path)
        docs = lam.encode([variants["query"].corpus[d] for d in doc_ids], batch_size=8)
        per_query[path] = {}
        for name, data in variants.items():
            qids = list(data.queries)
            queries = lam.encode_query([data.queries[q] for q in qids])
            per_query[path][name] = np.array(
                ndcg_per_query(queries @ docs.T, doc_ids, [data.qrels[q] for q in qids], 10)
            )
        print(f"{path}: done", flush=True)
    base = args.model[0]
    record: dict = {"base": base, "models": {}}
    lines = [
        f"QMSum val nDCG@10 per model, and the paired difference from `{base}` (95% bootstrap interval)",
        "",
        "| model | query | Δ query | answer | Δ answer |",
        "|---|---:|---:|---:|---:|",
    ]
    for path, scores in per_query.items():
        row = {}
        cells = [path]
        for name in ("query", "answer"):
            diff = scores[name] - per_query[base][name]
            lo, hi = paired_interval(diff)
            mean, delta = 100 * scores[name].mean(), 100 * diff.mean()
            row[name] = {"ndcg_at_10": mean, "delta": delta, "ci95": [100 * lo, 100 * hi]}
            cells += [f"{mean:.2f}", f"{delta:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"]
        record["models"][path] = row
        lines.append("| " + " | ".join(cells) + " |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "qmsum-paired.json").write_text(json.dumps(record, indent=2) + "\n")
    (OUT / "qmsum-paired.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

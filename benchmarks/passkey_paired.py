"""Passkey dev: is one model's loss against another real? A paired bootstrap over the queries.

    python benchmarks/passkey_paired.py --model - --model runs/cloze-330/model

The shipping rule allows "a passkey loss inside sampling noise". This makes that a test on dev
data (synthetic seed 1, ``lam.retrieval.tuning.DEV_SEED``, lengths 256…8192: 300 queries, never
the evaluation seed). Each model runs the dev documents once, segment by segment as ``encode``
does (per-segment sums cached by ``redundancy_gate.collect`` under ``runs/redundancy-gate/``),
is pooled with its own redundancy gate (τ, p from its config), and scores nDCG@1 per query.
Every later model is compared with the first on the same 300 queries: the mean difference and
its 95% interval from 2,000 paired bootstrap resamples (fixed seed). An interval that excludes
0 is a difference the dev set can tell apart.

Writes results/distill/passkey-paired-<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from qmsum_paired import paired_interval
from redundancy_gate import DEV_LENGTHS, collect, pooled_documents

from lam import LAM
from lam.evaluation.metrics import ndcg_per_query
from lam.evaluation.synthetic import synthetic_splits
from lam.retrieval.tuning import DEV_SEED

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


def per_query_hits(data: dict, tau: float, power: float) -> np.ndarray:
    """nDCG@1 of every dev query, lengths in order, from a model's collected segment sums."""
    hits = []
    for d in data.values():
        docs = pooled_documents(d, tau, power)
        for queries, relevant in d["q"].values():
            hits += ndcg_per_query(queries @ docs.T, d["doc_ids"], relevant, 1)
    return np.array(hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="model folder, or - for the bundled")
    parser.add_argument("--tag", action="append", help="cache name per model (default: the folder's parent)")
    parser.add_argument("--name", default="dev", help="names the record")
    args = parser.parse_args()
    tags = args.tag or [("shipped" if m == "-" else Path(m).resolve().parent.name) for m in args.model]
    if len(tags) != len(args.model):
        parser.error("give one --tag per --model")
    splits = [(s.name, s, [s]) for s in synthetic_splits("passkey", DEV_LENGTHS, seed=DEV_SEED)]
    scores: dict[str, np.ndarray] = {}
    for path, tag in zip(args.model, tags):
        lam = LAM(None if path == "-" else path)
        cfg = lam.model.config
        scores[tag] = per_query_hits(collect(lam, tag, "passkey", splits), cfg.redundancy_tau, cfg.redundancy_power)
    base = tags[0]
    record: dict = {"base": base, "dev_seed": DEV_SEED, "lengths": list(DEV_LENGTHS), "models": {}}
    lines = [
        f"Passkey dev nDCG@1 (seed {DEV_SEED}, lengths {DEV_LENGTHS[0]}…{DEV_LENGTHS[-1]}, "
        f"{len(scores[base])} queries) and the paired difference from `{base}` (95% bootstrap interval)",
        "",
        "| model | passkey dev | Δ | 95% interval |",
        "|---|---:|---:|---|",
    ]
    for tag, hits in scores.items():
        diff = hits - scores[base]
        lo, hi = paired_interval(diff)
        row = {"ndcg_at_1": 100 * hits.mean(), "delta": 100 * diff.mean(), "ci95": [100 * lo, 100 * hi]}
        record["models"][tag] = row
        lines.append(f"| {tag} | {row['ndcg_at_1']:.2f} | {row['delta']:+.2f} | [{100 * lo:+.2f}, {100 * hi:+.2f}] |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"passkey-paired-{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (OUT / f"passkey-paired-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

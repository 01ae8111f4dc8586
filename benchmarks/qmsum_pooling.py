"""QMSum val (dev): does the memory or the pooling lose the meeting? Segment-level analysis.

    python benchmarks/qmsum_pooling.py                       # the bundled weights
    python benchmarks/qmsum_pooling.py --model runs/chain-100/model --name chain-100

Every transcript runs through the model segment by segment (memory carried, as ``encode``
does); each segment's mean hidden state is kept. Documents are then scored several ways,
nDCG@10 for both query variants:

* ``token mean``       — all tokens of all segments averaged (``encode`` before the redundancy
  gate; ``benchmarks/redundancy_gate.py`` scores the gated pooling)
* ``segment mean``     — the mean of unit-norm segment vectors (teacher chunk-mean style)
* ``novelty p``        — segments weighted by (1 − cos(segment, document mean))^p
* ``best segment``     — max over segments of cos(query, segment): not one vector per
  document, the upper reference for what the segments themselves hold

Writes results/distill/qmsum-pooling-<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from redundancy_gate import segment_sums

from lam import LAM
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.metrics import ndcg_at_k

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--name", default="shipped")
    args = parser.parse_args()
    lam = LAM(args.model)
    variants = {v: load_qmsum(v) for v in ("query", "answer")}
    split = variants["query"]
    doc_ids = list(split.corpus)
    segments = segment_sums(lam, [split.corpus[d] for d in doc_ids])
    pooled = {
        "token mean": np.stack([s.sum(0) / c.sum() for s, c in segments]),
        "segment mean": np.stack([unit(s / c[:, None]).mean(0) for s, c in segments]),
    }
    for p in (1, 2):
        rows = []
        for s, c in segments:
            u = unit(s / c[:, None])
            w = (1 - u @ unit(u.mean(0))) ** p
            rows.append((w[:, None] * u).sum(0))
        pooled[f"novelty p={p}"] = np.stack(rows)
    scores: dict[str, dict[str, float]] = {}
    for variant, data in variants.items():
        qids = list(data.queries)
        queries = lam.encode_query([data.queries[q] for q in qids])
        relevant = [data.qrels[q] for q in qids]
        for name, docs in pooled.items():
            scores.setdefault(name, {})[variant] = 100 * ndcg_at_k(queries @ unit(docs).T, doc_ids, relevant, 10)
        best = np.stack([(queries @ unit(s / c[:, None]).T).max(1) for s, c in segments], 1)
        scores.setdefault("best segment (not single-vector)", {})[variant] = 100 * ndcg_at_k(
            best, doc_ids, relevant, 10
        )
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"model": args.model or "bundled", "name": args.name, "ndcg_at_10": scores}
    (OUT / f"qmsum-pooling-{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"QMSum val nDCG@10, {args.name} weights", "", "| pooling | query | answer |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['query']:.2f} | {v['answer']:.2f} |" for k, v in scores.items()]
    (OUT / f"qmsum-pooling-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

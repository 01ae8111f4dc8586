"""Choose the pooling's redundancy gate (τ, p) on dev data only.

    python benchmarks/redundancy_gate.py                                  # the bundled weights
    python benchmarks/redundancy_gate.py --model runs/embed-500/model --name embed-500

Every document of the dev sets runs through the model once, segment by segment with the memory
carried (as ``encode`` does), and each segment's Σ hidden and token count are kept (cached in
``runs/redundancy-gate/<name>-<set>.pkl``). Pooling is then recomputed for each (τ, p) with
:func:`lam.layers.pool_reference` — the same rule ``encode`` applies — and scored:

* passkey, synthetic dev seed 1 (``lam.retrieval.tuning.DEV_SEED``, never the evaluation
  seed), lengths 256…8192: nDCG@1, mean over lengths;
* QMSum val (the dev split; the test split is held out): nDCG@10, query and answer variants.

Each (τ, p) is rated by the mean of its three dev figures (passkey, QMSum query, QMSum answer);
``--apply`` writes the best-rated pair into the model folder's config.json (and its checksums),
so the folder's ``encode`` uses the gate chosen for its own weights.

Writes results/distill/redundancy-gate-<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from lam import LAM
from lam.documents import pooled_sums
from lam.evaluation.datasets import RetrievalSplit, load_qmsum
from lam.evaluation.metrics import ndcg_at_k
from lam.evaluation.synthetic import synthetic_splits
from lam.layers import pool_reference
from lam.retrieval.tuning import DEV_SEED

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "distill"
CACHE = ROOT / "runs" / "redundancy-gate"
DEV_LENGTHS = (256, 512, 1024, 2048, 4096, 8192)
GRID = [(0.0, 1.0)] + [(tau, p) for tau in (0.1, 0.15, 0.2, 0.25, 0.3) for p in (1.0, 2.0, 3.0)]


@torch.inference_mode()
def segment_sums(lam: LAM, texts: list[str], batch: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per document: (Σ hidden per segment ``[S, D]``, tokens per segment ``[S]``)."""
    out: list[list[tuple[np.ndarray, float]]] = [[] for _ in texts]
    for b in range(0, len(texts), batch):

        def on_step(rows, sums, counts, b=b):
            for k, r in enumerate(rows):
                out[b + r].append((sums[k].numpy().copy(), float(counts[k])))

        docs = [lam.segmenter.text_segments(t) for t in texts[b : b + batch]]
        pooled_sums(lam.model, lam.segmenter, docs, on_step=on_step)
    return [(np.stack([s for s, _ in o]), np.array([c for _, c in o])) for o in out]


def collect(lam: LAM, name: str, key: str, splits: list[tuple[str, RetrievalSplit, list[RetrievalSplit]]]) -> dict:
    path = CACHE / f"{name}-{key}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    data = {}
    for label, split, variants in splits:
        doc_ids = list(split.corpus)
        queries = {}
        for v in variants:
            qids = list(v.queries)
            queries[v.name] = (lam.encode_query([v.queries[q] for q in qids]), [v.qrels[q] for q in qids])
        data[label] = {"doc_ids": doc_ids, "segs": segment_sums(lam, [split.corpus[d] for d in doc_ids]), "q": queries}
        print(f"{name}: {label} collected", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


def pooled_documents(d: dict, tau: float, power: float) -> np.ndarray:
    """L2-normalised embeddings ``[N, D]`` of one collected set's documents under the gate (τ, p)."""
    docs = np.stack([pool_reference(list(torch.from_numpy(s)), list(c), tau, power).numpy() for s, c in d["segs"]])
    return docs / np.linalg.norm(docs, axis=1, keepdims=True)


def score(data: dict, tau: float, power: float, k: int) -> dict[str, float]:
    out = {}
    for d in data.values():
        docs = pooled_documents(d, tau, power)
        for variant, (queries, relevant) in d["q"].items():
            out[variant] = 100 * ndcg_at_k(queries @ docs.T, d["doc_ids"], relevant, k)
    return out


def dev_rating(row: dict) -> float:
    """How a (τ, p) is rated on dev: the mean of passkey dev, QMSum val query and answer."""
    return (row["passkey_dev_mean"] + row["qmsum_val_query"] + row["qmsum_val_answer"]) / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--name", default="shipped")
    parser.add_argument("--apply", action="store_true", help="write the best-rated (τ, p) into --model's config")
    args = parser.parse_args()
    if args.apply and args.model is None:
        parser.error("--apply rewrites a model folder: pass --model (the bundled weights are not rewritten)")
    lam = LAM(args.model)
    passkey = collect(
        lam, args.name, "passkey", [(s.name, s, [s]) for s in synthetic_splits("passkey", DEV_LENGTHS, seed=DEV_SEED)]
    )
    query, answer = load_qmsum("query"), load_qmsum("answer")
    qmsum = collect(lam, args.name, "qmsum", [("qmsum", query, [query, answer])])
    rows = []
    for tau, power in GRID:
        per_length = score(passkey, tau, power, k=1)
        qm = score(qmsum, tau, power, k=10)
        rows.append(
            {
                "tau": tau,
                "power": power,
                "passkey_dev_mean": float(np.mean(list(per_length.values()))),
                "passkey_dev": per_length,
                "qmsum_val_query": qm["qmsum-query"],
                "qmsum_val_answer": qm["qmsum-answer"],
            }
        )
    best = max(rows, key=dev_rating)  # the first of equals, in grid order
    OUT.mkdir(parents=True, exist_ok=True)
    record = {
        "model": args.model or "bundled",
        "name": args.name,
        "dev_seed": DEV_SEED,
        "best": {"tau": best["tau"], "power": best["power"], "dev_rating": dev_rating(best)},
        "grid": rows,
    }
    (OUT / f"redundancy-gate-{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"Redundancy gate on dev data, {args.name} weights (τ = 0: plain token mean)",
        "",
        "| τ | p | passkey dev (mean) | "
        + " | ".join(str(L) for L in DEV_LENGTHS)
        + " | QMSum val query | answer | dev rating |",
        "|---:|---:|---:|" + "---:|" * len(DEV_LENGTHS) + "---:|---:|---:|",
    ]
    for r in rows:
        cells = " | ".join(f"{v:.0f}" for v in r["passkey_dev"].values())
        mark = "**" if r is best else ""
        lines.append(
            f"| {r['tau']:g} | {r['power']:g} | {r['passkey_dev_mean']:.1f} | {cells} | "
            f"{r['qmsum_val_query']:.2f} | {r['qmsum_val_answer']:.2f} | {mark}{dev_rating(r):.2f}{mark} |"
        )
    lines += [
        "",
        f"Best dev rating (mean of passkey, QMSum query, answer): τ = {best['tau']:g}, p = {best['power']:g}.",
    ]
    (OUT / f"redundancy-gate-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.apply:
        config = dataclasses.replace(lam.model.config, redundancy_tau=best["tau"], redundancy_power=best["power"])
        lam.model.config = config
        lam.save_pretrained(args.model)
        print(f"wrote τ = {best['tau']:g}, p = {best['power']:g} into {args.model}/config.json")


if __name__ == "__main__":
    main()

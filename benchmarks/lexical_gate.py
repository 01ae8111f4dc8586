"""A negative result, kept so it can be rerun: the redundancy gate on token-bigram novelty.

    python benchmarks/lexical_gate.py --tag shipped

The shipped gate measures a segment's novelty in embedding space, 1 − cos(x_s, Σ_{j<s} x_j).
This tries the lexical alternative, novelty = the share of the segment's token bigrams that the
document has not shown before, with the same w = min(1, (novelty/τ)^p), w_1 = 1. It separates
filler (0), an inserted sentence (about 0.1) and prose (QMSum ≥ 0.17) cleanly, yet scores far
worse on passkey dev: see MODEL_CARD.md, session 11, for why.

Reads the per-segment sums ``redundancy_gate.collect`` cached for the tag (passkey dev seed 1
and QMSum val); prints the embedding gate (τ 0.15, p 3) and a grid of lexical gates.
Writes results/distill/lexical-gate-<tag>.md.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from redundancy_gate import CACHE, DEV_LENGTHS
from redundancy_gate import score as embedding_score

from lam import LAM
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.metrics import ndcg_at_k
from lam.evaluation.synthetic import synthetic_splits
from lam.retrieval.tuning import DEV_SEED

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


def bigram_novelty(bodies: list[list[int]]) -> np.ndarray:
    """Per segment: the share of its bigrams not seen earlier in the document."""
    seen: set[tuple[int, int]] = set()
    out = []
    for body in bodies:
        grams = [(body[i], body[i + 1]) for i in range(len(body) - 1)]
        out.append(sum(g not in seen for g in grams) / max(1, len(grams)))
        seen.update(grams)
    return np.array(out)


def pooled(segs: np.ndarray, counts: np.ndarray, novelty: np.ndarray, tau: float, power: float) -> np.ndarray:
    w = np.minimum(1.0, (np.maximum(novelty, 0) / tau) ** power)
    w[0] = 1.0
    return (w[:, None] * segs).sum(0) / (w * counts).sum()


def score(data: dict, novelty: dict, tau: float, power: float, k: int) -> dict[str, float]:
    out = {}
    for label, d in data.items():
        docs = np.stack([pooled(s, c, n, tau, power) for (s, c), n in zip(d["segs"], novelty[label])])
        docs /= np.linalg.norm(docs, axis=1, keepdims=True)
        for variant, (queries, relevant) in d["q"].items():
            out[variant] = 100 * ndcg_at_k(queries @ docs.T, d["doc_ids"], relevant, k)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="shipped", help="a cache name of redundancy_gate.collect")
    args = parser.parse_args()
    segmenter = LAM(None).segmenter
    passkey = pickle.loads((CACHE / f"{args.tag}-passkey.pkl").read_bytes())
    qmsum = pickle.loads((CACHE / f"{args.tag}-qmsum.pkl").read_bytes())
    texts = {s.name: s.corpus for s in synthetic_splits("passkey", DEV_LENGTHS, seed=DEV_SEED)}
    texts["qmsum"] = load_qmsum("query").corpus
    data = {**passkey, **qmsum}
    lexical = {
        label: [bigram_novelty(list(segmenter.text_segments(texts[label][doc]))) for doc in d["doc_ids"]]
        for label, d in data.items()
    }
    lines = [
        f"Redundancy gate on embedding vs token-bigram novelty, {args.tag} weights, dev data",
        "",
        "| novelty | τ | p | passkey dev (mean) | " + " | ".join(map(str, DEV_LENGTHS)) + " | QMSum val q | a |",
        "|---|---:|---:|---:|" + "---:|" * len(DEV_LENGTHS) + "---:|---:|",
    ]
    grid = [("embedding", 0.15, 3.0)] + [("bigram", tau, p) for tau in (0.05, 0.1, 0.15, 0.2) for p in (1.0, 3.0)]
    for measure, tau, p in grid:
        if measure == "embedding":  # the shipped gate, exactly as encode pools
            per_length, qm = embedding_score(passkey, tau, p, k=1), embedding_score(qmsum, tau, p, k=10)
        else:
            per_length, qm = score(passkey, lexical, tau, p, 1), score(qmsum, lexical, tau, p, 10)
        cells = " | ".join(f"{v:.0f}" for v in per_length.values())
        lines.append(
            f"| {measure} | {tau:g} | {p:g} | {np.mean(list(per_length.values())):.1f} | {cells} | "
            f"{qm['qmsum-query']:.2f} | {qm['qmsum-answer']:.2f} |"
        )
        print(lines[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"lexical-gate-{args.tag}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""QMSum val (dev) and STS-B dev: token weights from each document's own token statistics.

    python benchmarks/qmsum_token_weights.py                    # the bundled weights (~6 min here)
    python benchmarks/qmsum_token_weights.py --model runs/cloze-330-polish/model --name polish

Each text runs through the model segment by segment with the memory carried (as ``encode``
does, redundancy gate off, so the token weights alone are compared) and every token's state and
id is kept. One vector per text is then pooled five ways:

* ``mean``             — the plain token mean
* ``document SIF a``   — w(v) = a / (a + p(v)), p(v) the share of the text's own tokens that are v
  (SIF's weights with the text itself as the corpus; a chosen on this dev set)
* ``segment IDF``      — w(v) = log((1 + S) / df(v)), df(v) the number of the text's S segments
  that hold v: an IDF with the segments as documents, no parameter (``token_idf`` in the
  config, :mod:`lam.layers.pooling`)
* ``segment IDF + c``  — the same with df(v) + c·S, clipped at 0 (ids in most segments drop out)
* ``passage IDF, P``   — segment IDF with passages of P text tokens as the documents
  (``idf_passage_tokens``): P = 508 / 1016 are two / four full segments, P = 510 the teacher's
  512 positions less [CLS] and [SEP]

Queries (no prompt) and STS-B dev pairs are pooled with the same scheme as the documents; they are
one segment, so segment IDF gives them the plain mean, document SIF does not.
QMSum val is the dev split (the test split is held out); nothing here reads a test split.

Writes results/distill/qmsum-token-weights-<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from lam import LAM
from lam.evaluation.data_paths import require
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.metrics import ndcg_at_k

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


@torch.inference_mode()
def token_states(lam: LAM, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(states ``[N, D]``, ids ``[N]``, segment index ``[N]``, text position ``[N]``) of every token,
    memory carried; [CLS] / [SEP] take the position of their segment's first / last text token."""
    states, ids, segment, position = [], [], [], []
    body_seen = 0
    state = None
    bodies = list(lam.segmenter.text_segments(text))
    for s, body in enumerate(bodies):
        framed, mask = lam.segmenter.frame([body])
        hidden, state = lam.model.forward_segment(framed, mask, state, s < len(bodies) - 1)
        states.append(hidden[0][mask[0]].numpy())
        ids.append(framed[0][mask[0]].numpy())
        n = int(mask.sum())
        segment.append(np.full(n, s))
        position.append(body_seen + np.clip(np.arange(n) - 1, 0, max(n - 3, 0)))
        body_seen += n - 2
    return np.concatenate(states), np.concatenate(ids), np.concatenate(segment), np.concatenate(position)


def weights(ids: np.ndarray, segment: np.ndarray, position: np.ndarray, scheme: str, a: float) -> np.ndarray:
    if scheme == "passage IDF":  # a = P text tokens per passage
        return weights(ids, position // int(a), position, "segment IDF", 0.0)
    if scheme == "mean":
        return np.ones(len(ids))
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if scheme == "document SIF":
        return a / (a + counts[inverse] / len(ids))
    S = int(segment.max()) + 1
    df = np.unique(np.stack([inverse, segment]), axis=1)[0]  # one (id, segment) pair per occurrence set
    df = np.bincount(df, minlength=len(counts))
    return np.maximum(np.log((1 + S) / (df[inverse] + a * S)), 0.0)  # + c·S can push u below 0


def pool(item: tuple[np.ndarray, ...], scheme: str, a: float) -> np.ndarray:
    h, ids, segment, position = item
    w = weights(ids, segment, position, scheme, a)
    v = (w[:, None] * h).sum(0)
    return v / np.linalg.norm(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--name", default="shipped")
    args = parser.parse_args()
    lam = LAM(args.model)
    lam.model.config = dataclasses.replace(lam.model.config, redundancy_tau=0.0, token_idf=False)
    variants = {v: load_qmsum(v) for v in ("query", "answer")}
    doc_ids = list(variants["query"].corpus)
    docs = [token_states(lam, variants["query"].corpus[d]) for d in doc_ids]
    queries = {}
    for v, data in variants.items():
        qids = list(data.queries)
        queries[v] = ([token_states(lam, data.queries[q]) for q in qids], [data.qrels[q] for q in qids])
    with open(require("stsb/dev.csv"), encoding="utf-8") as f:
        dev = list(csv.DictReader(f))
    pairs = [(token_states(lam, r["sentence1"]), token_states(lam, r["sentence2"])) for r in dev]
    gold = np.array([float(r["score"]) for r in dev])
    grid = [("mean", 0.0)] + [("document SIF", a) for a in (1e-4, 3e-4, 1e-3, 1e-2)]
    grid += [("segment IDF", 0.0)] + [("segment IDF + c", c) for c in (0.05, 0.2)]
    grid += [("passage IDF", P) for P in (508, 510, 1016)]
    rows = []
    for scheme, a in grid:
        kind = "segment IDF" if scheme.startswith("segment") else scheme
        letter = {"document SIF": "a", "passage IDF": "P"}.get(kind, "c")
        d = np.stack([pool(x, kind, a) for x in docs])
        row = {"pooling": scheme if a == 0 else f"{scheme}, {letter} = {a:g}"}
        for v, (qs, relevant) in queries.items():
            q = np.stack([pool(x, kind, a) for x in qs])
            row[v] = 100 * ndcg_at_k(q @ d.T, doc_ids, relevant, 10)
        cos = [float(pool(x, kind, a) @ pool(y, kind, a)) for x, y in pairs]
        row["stsb_dev"] = 100 * spearmanr(cos, gold).correlation
        rows.append(row)
        print(row, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"model": args.model or "bundled", "name": args.name, "rows": rows, "log_base": math.e}
    (OUT / f"qmsum-token-weights-{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"QMSum val nDCG@10 and STS-B dev Spearman, {args.name} weights, redundancy gate off",
        "",
        "| pooling | QMSum query | QMSum answer | STS-B dev |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['pooling']} | {r['query']:.2f} | {r['answer']:.2f} | {r['stsb_dev']:.2f} |" for r in rows]
    (OUT / f"qmsum-token-weights-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

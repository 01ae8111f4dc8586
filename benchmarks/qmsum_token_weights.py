"""QMSum val (dev) and STS-B dev: token weights from each document's own token statistics.

    python benchmarks/qmsum_token_weights.py                    # the bundled weights (~6 min here)
    python benchmarks/qmsum_token_weights.py --model runs/cloze-330-polish/model --name polish
    python benchmarks/qmsum_token_weights.py --model ... --name polish --gate   # with the gate, as lam eval
    ... --cache /tmp/polish-states.pkl    # keep the token states: a second run only re-pools

Each text runs through the model segment by segment with the memory carried (as ``encode``
does; redundancy gate off unless ``--gate``, so the token weights alone are compared) and every
token's state and id is kept. One vector per text is then pooled these ways:

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
* ``passage IDF + c``  — passages of P = 510 with df(v) + c·S, clipped at 0
* ``sliding IDF, k``   — windows of 510 text tokens at a stride of 510 / k as the documents (a
  token lies in up to k of them): finer than disjoint passages, and still one window, so the
  plain mean, for any text the teacher sees whole
* ``long-text IDF + c`` — the plain mean for a text of at most 510 text tokens, segment IDF (+ c)
  beyond (``idf_min_text_tokens`` = 510 with P = 0): the teacher's pool wherever the teacher sees
  the text whole, segment-fine weights where it cannot

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
import pickle
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from lam import LAM
from lam.evaluation.data_paths import require
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.metrics import ndcg_at_k
from lam.layers.pooling import redundancy_weight

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"
TEACHER_TEXT = 510  # the teacher's 512 positions less [CLS] and [SEP]


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


def sliding_df(
    inverse: np.ndarray, position: np.ndarray, k: int, passage: int = TEACHER_TEXT
) -> tuple[np.ndarray, int]:
    """(df per distinct id, W) over the W windows of ``passage`` tokens at a stride of passage / k."""
    assert passage % k == 0, "k must divide the window, or a text of one window would get two"
    block = position // (passage // k)
    W = max(1, int(block.max()) + 2 - k)
    cover = np.zeros((int(inverse.max()) + 1, W), dtype=bool)
    for d in range(k):  # a token in block b lies in windows b − k + 1 … b that exist
        j = block - d
        ok = (j >= 0) & (j < W)
        cover[inverse[ok], j[ok]] = True
    return cover.sum(1), W


def weights(ids: np.ndarray, segment: np.ndarray, position: np.ndarray, scheme: str, a: float) -> np.ndarray:
    if scheme == "long-text IDF + c":  # a = c; a text of ≤ TEACHER_TEXT text tokens keeps the mean
        if int(position.max()) < TEACHER_TEXT:
            return np.ones(len(ids))
        return weights(ids, segment, position, "segment IDF", a)
    if scheme == "passage IDF":  # a = P text tokens per passage
        return weights(ids, position // int(a), position, "segment IDF", 0.0)
    if scheme == "passage IDF + c":  # passages of TEACHER_TEXT text tokens, a = c
        return weights(ids, position // TEACHER_TEXT, position, "segment IDF", a)
    if scheme == "sliding IDF":  # a = k windows per token
        _, inverse = np.unique(ids, return_inverse=True)
        df, W = sliding_df(inverse, position, int(a))
        return np.log((1 + W) / df[inverse])
    if scheme == "mean":
        return np.ones(len(ids))
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if scheme == "document SIF":
        return a / (a + counts[inverse] / len(ids))
    S = int(segment.max()) + 1
    df = np.unique(np.stack([inverse, segment]), axis=1)[0]  # one (id, segment) pair per occurrence set
    df = np.bincount(df, minlength=len(counts))
    return np.maximum(np.log((1 + S) / (df[inverse] + a * S)), 0.0)  # + c·S can push u below 0


def segment_gate(h: np.ndarray, segment: np.ndarray, tau: float, power: float) -> np.ndarray:
    """The redundancy gate's w_s of every token's segment (:func:`lam.layers.pooling.redundancy_weight`)."""
    x = torch.from_numpy(np.stack([h[segment == s].sum(0) for s in range(int(segment.max()) + 1)])).double()
    seen = torch.cumsum(x, dim=0) - x
    return redundancy_weight(x, seen, tau, power).numpy()[segment]


def pool(item: tuple[np.ndarray, ...], scheme: str, a: float, gate: tuple[float, float] | None = None) -> np.ndarray:
    h, ids, segment, position = item
    w = weights(ids, segment, position, scheme, a)
    if gate is not None:
        w = w * segment_gate(h, segment, *gate)
    v = (w[:, None] * h).sum(0)
    return v / np.linalg.norm(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--name", default="shipped")
    parser.add_argument("--gate", action="store_true", help="apply the model's redundancy gate, as encode does")
    parser.add_argument("--cache", type=Path, default=None, help="pickle of the token states (written, then reused)")
    args = parser.parse_args()
    lam = LAM(args.model)
    gate = (lam.model.config.redundancy_tau, lam.model.config.redundancy_power) if args.gate else None
    lam.model.config = dataclasses.replace(lam.model.config, redundancy_tau=0.0, token_idf=False)
    variants = {v: load_qmsum(v) for v in ("query", "answer")}
    doc_ids = list(variants["query"].corpus)
    with open(require("stsb/dev.csv"), encoding="utf-8") as f:
        dev = list(csv.DictReader(f))
    gold = np.array([float(r["score"]) for r in dev])
    cached = pickle.loads(args.cache.read_bytes()) if args.cache and args.cache.exists() else None
    if cached is not None and cached["weights_sha256"] != lam.weights_sha256:
        raise SystemExit(f"{args.cache} holds another model's states")
    if cached is None:
        docs = [token_states(lam, variants["query"].corpus[d]) for d in doc_ids]
        queries = {}
        for v, data in variants.items():
            qids = list(data.queries)
            queries[v] = ([token_states(lam, data.queries[q]) for q in qids], [data.qrels[q] for q in qids])
        pairs = [(token_states(lam, r["sentence1"]), token_states(lam, r["sentence2"])) for r in dev]
        if args.cache:
            state = {"weights_sha256": lam.weights_sha256, "docs": docs, "queries": queries, "pairs": pairs}
            args.cache.write_bytes(pickle.dumps(state))
    else:
        docs, queries, pairs = cached["docs"], cached["queries"], cached["pairs"]
    print(f"shortest meeting: {min(int(d[3].max()) + 1 for d in docs)} text tokens", flush=True)
    grid = [("mean", 0.0)] + [("document SIF", a) for a in (1e-4, 3e-4, 1e-3, 1e-2)]
    grid += [("segment IDF", 0.0)] + [("segment IDF + c", c) for c in (0.05, 0.2)]
    grid += [("passage IDF", P) for P in (508, 510, 1016)]
    grid += [("passage IDF + c", c) for c in (0.1, 0.2)] + [("sliding IDF", k) for k in (2, 3, 6)]
    grid += [("long-text IDF + c", c) for c in (0.0, 0.05, 0.1, 0.15, 0.2)]
    rows = []
    for scheme, a in grid:
        kind = "segment IDF" if scheme == "segment IDF + c" else scheme
        letter = {"document SIF": "a", "passage IDF": "P", "sliding IDF": "k"}.get(kind, "c")
        d = np.stack([pool(x, kind, a, gate) for x in docs])
        row = {"pooling": scheme if a == 0 and "+ c" not in kind else f"{scheme}, {letter} = {a:g}"}
        for v, (qs, relevant) in queries.items():
            q = np.stack([pool(x, kind, a, gate) for x in qs])
            row[v] = 100 * ndcg_at_k(q @ d.T, doc_ids, relevant, 10)
        cos = [float(pool(x, kind, a) @ pool(y, kind, a)) for x, y in pairs]
        row["stsb_dev"] = 100 * spearmanr(cos, gold).correlation
        rows.append(row)
        print(row, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    name = args.name + ("-gate" if gate else "")
    record = {"model": args.model or "bundled", "name": args.name, "gate": gate, "rows": rows, "log_base": math.e}
    (OUT / f"qmsum-token-weights-{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"QMSum val nDCG@10 and STS-B dev Spearman, {args.name} weights, redundancy gate "
        + (f"on (tau {gate[0]:g}, p {gate[1]:g})" if gate else "off"),
        "",
        "| pooling | QMSum query | QMSum answer | STS-B dev |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['pooling']} | {r['query']:.2f} | {r['answer']:.2f} | {r['stsb_dev']:.2f} |" for r in rows]
    (OUT / f"qmsum-token-weights-{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

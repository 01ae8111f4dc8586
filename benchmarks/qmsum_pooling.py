"""QMSum val (dev): how far can one vector per meeting go? Segment-level analysis.

    python benchmarks/qmsum_pooling.py                       # the bundled weights
    python benchmarks/qmsum_pooling.py --model runs/chain-100/model --name chain-100

Every transcript runs through the model segment by segment (memory carried, as ``encode``
does); each segment's mean hidden state is kept. Documents are then scored several ways,
nDCG@10 for both query variants. All but the last row are one vector per document:

* ``token mean``       — all tokens of all segments averaged (``encode`` before the redundancy
  gate; ``benchmarks/redundancy_gate.py`` scores the gated pooling)
* ``segment mean``     — the mean of unit-norm segment vectors (teacher chunk-mean style)
* ``novelty p``        — segments weighted by (1 − cos(segment, document mean))^p
* ``specificity p``    — segments weighted by (1 − cos(segment, μ))^p, μ the mean of generic
  text (unit vectors of 1,024 training-book segments): an IDF for whole segments
* ``centred``          — μ subtracted from query and document vectors (anisotropy removal)
* ``dimension max``    — per-dimension max over the unit segment vectors
* ``soft max t``       — per dimension, a softmax(±x/t)-weighted mean of the segments: between
  the mean (t → ∞) and the largest-magnitude value (t → 0)
* ``chunks of W``      — the teacher alone (memory off, full attention inside each chunk) over
  chunks of 128 and 512 tokens, mean of the unit chunk vectors: does the amount of context
  seen at once move the score?
* ``best segment``     — max over segments of cos(query, segment): not one vector per
  document, the upper reference for what the segments themselves hold

Writes results/distill/qmsum-pooling-<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from redundancy_gate import segment_sums

from lam import LAM
from lam.config import LAMConfig
from lam.distill.data import token_windows
from lam.evaluation.datasets import load_qmsum
from lam.evaluation.metrics import ndcg_at_k
from lam.layers import masked_sum
from lam.model import LAMModel
from lam.tokenization import TextSegmenter

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@torch.inference_mode()
def chunk_vectors(model: LAMModel, segmenter: TextSegmenter, bodies: list[list[int]]) -> np.ndarray:
    """Unit mean-pooled vectors of [CLS] body [SEP] chunks, each on its own (no memory)."""
    out = []
    for i in range(0, len(bodies), 32):
        ids, mask = segmenter.frame(bodies[i : i + 32], "cpu")
        hidden, _ = model.forward_segment(ids, mask, None, write_memory=False)
        total, count = masked_sum(hidden, mask)
        out.append(unit((total / count.unsqueeze(-1)).numpy()))
    return np.concatenate(out)


def teacher_chunk_means(lam: LAM, texts: list[str], chunk: int) -> np.ndarray:
    """Mean of the teacher's unit chunk vectors over ``chunk``-token chunks of each text."""
    c = lam.config
    teacher = LAMModel(LAMConfig.from_dict({**c.to_dict(), "segment_len": chunk, "memory": False}))
    loaded = teacher.load_state_dict(lam.model.state_dict(), strict=False)  # only the memory's are left out
    assert not loaded.missing_keys, loaded.missing_keys
    teacher.eval()
    seg = TextSegmenter(lam.segmenter.tokenizer, chunk, c.cls_token_id, c.sep_token_id, c.pad_token_id)
    out = []
    for text in texts:
        ids = [i for piece in seg.iter_body_ids(text) for i in piece]
        out.append(chunk_vectors(teacher, seg, [ids[s : s + seg.body_len] for s in range(0, len(ids), seg.body_len)]))
    return np.stack([vectors.mean(0) for vectors in out])


def soft_max(u: np.ndarray, t: float) -> np.ndarray:
    """Per dimension: softmax(x/t)-weighted mean plus softmax(−x/t)-weighted mean over rows."""
    out = 0.0
    for z in (u, -u):
        w = np.exp((z - z.max(0)) / t)  # shifted by the max: no overflow
        out = out + (w / w.sum(0) * u).sum(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--name", default="shipped")
    args = parser.parse_args()
    torch.manual_seed(0)
    lam = LAM(args.model)
    variants = {v: load_qmsum(v) for v in ("query", "answer")}
    split = variants["query"]
    doc_ids = list(split.corpus)
    texts = [split.corpus[d] for d in doc_ids]
    segments = segment_sums(lam, texts)
    units = [unit(s / c[:, None]) for s, c in segments]
    generic = list(islice(token_windows(lam.segmenter, lam.segmenter.body_len, "train", seed=7, per_doc=4), 1024))
    mu = chunk_vectors(lam.model, lam.segmenter, generic).mean(0)  # not unit: its norm is the anisotropy
    pooled = {
        "token mean": np.stack([s.sum(0) / c.sum() for s, c in segments]),
        "segment mean": np.stack([u.mean(0) for u in units]),
    }
    for p in (1, 2):
        pooled[f"novelty p={p}"] = np.stack([((1 - u @ unit(u.mean(0))) ** p) @ u for u in units])
    for p in (1, 4):
        pooled[f"specificity p={p}"] = np.stack([((1 - u @ unit(mu)) ** p) @ u for u in units])
    pooled["centred (query and document)"] = pooled["segment mean"] - mu
    pooled["dimension max"] = np.stack([u.max(0) for u in units])
    for t in (0.02, 0.1):
        pooled[f"soft max t={t}"] = np.stack([soft_max(u, t) for u in units])
    for chunk in (128, 512):
        pooled[f"teacher chunks of {chunk}"] = teacher_chunk_means(lam, texts, chunk)
    scores: dict[str, dict[str, float]] = {}
    for variant, data in variants.items():
        qids = list(data.queries)
        queries = lam.encode_query([data.queries[q] for q in qids])
        relevant = [data.qrels[q] for q in qids]
        for name, docs in pooled.items():
            q = unit(queries - mu) if name.startswith("centred") else queries
            scores.setdefault(name, {})[variant] = 100 * ndcg_at_k(q @ unit(docs).T, doc_ids, relevant, 10)
        best = np.stack([(queries @ u.T).max(1) for u in units], 1)
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

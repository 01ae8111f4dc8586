"""Choose the long-text pooling (and weights) on the multi-genre suite:
``python scripts/choose_pooling.py [--model DIR ...]``.

The suite is ``lam eval --suite genres`` (QMSum val meetings, queries and answers; L-Eval's 176
documents of eleven kinds, questions and reference outputs; dev data only). Every candidate
pooling is computed from one forward pass per text: the per-id running sums that segment IDF
keeps are kept gated and ungated, and each candidate is a different weighting of them. So the
candidates differ only in the pooling, on the same token states. Each runs with the memory on
and off (the same weights, every read gate closed); with several ``--model`` folders, each
model's memory-on candidates compete too (their memory-off ones are computed once when the
models differ only in the memory). A folder whose config leaves the memory off gives only its
memory-off candidates (lam-v1's memory-on ones need a copy of the bundled folder with the memory
on, as the README shows).

Candidates (u(v) = max(0, log((1 + S) / (df(v) + c·S))) over the text's S segments, only for
texts of more than 510 tokens, as in :mod:`lam.layers.pooling`):

* ``mean``: the plain token mean;
* ``gated-mean``: the token mean under the redundancy gate;
* ``idf-c<c>``: segment IDF with the gate, c in ``C_GRID`` (``idf-c0.2`` is lam-v1's pooling);
* ``idf-c0.2-ungated``: segment IDF without the gate;
* ``segment-mean``: the mean of the segments' L2-normalised token means (what chunk-mean does
  with the teacher's chunk vectors), for any length.

The rule, fixed before any candidate was scored (docs/research.md): among the candidates whose
every genre is at least the teacher chunk-mean's score minus 1 nDCG@10 (the floor), the best mean
over the genres wins; if none qualifies, the one whose worst genre margin over chunk-mean is the
largest (ties within 0.1: the better mean). The record goes to
``docs/research/records/pooling/<--record>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import lam.runner
from lam import LAM
from lam.evaluation.datasets import RetrievalSplit, load_leval, load_qmsum
from lam.evaluation.encoders import BM25, LAMEncoder, TeacherChunkMean, corpus_key
from lam.evaluation.metrics import ndcg_at_k
from lam.evaluation.runner import score_retrieval, summarize_genres
from lam.layers.pooling import IDF_MIN_TEXT_TOKENS, RunningPool, _IdStats

C_GRID = (0.0, 0.1, 0.2, 0.3, 0.5)
FLOOR = 1.0  # a genre may sit at most this far below the teacher chunk-mean
RECORD = Path(__file__).resolve().parents[1] / "docs" / "research" / "records" / "pooling"
MEMORY_OFF = "memory off"


class _ProbeStats(_IdStats):
    """Segment IDF's per-id sums, plus the same sums without the gate."""

    def __init__(self, dim, device) -> None:
        super().__init__(dim, device)
        self.plain = torch.zeros_like(self.hidden)  # Σ h per id, rows as the parent's
        self.plain_n = torch.zeros_like(self.weight)

    def add(self, hidden, ids, w) -> None:
        super().add(hidden, ids, w)
        grow = self.hidden.shape[0] - self.plain.shape[0]
        if grow:
            self.plain = torch.cat([self.plain, self.plain.new_zeros(grow, self.plain.shape[1])])
            self.plain_n = torch.cat([self.plain_n, self.plain_n.new_zeros(grow)])
        rows = torch.tensor([self.slot[v] for v in ids.tolist()])
        self.plain.index_add_(0, rows, hidden.to(self.plain.dtype))
        self.plain_n.index_add_(0, rows, torch.ones(len(rows)))

    def candidates(self) -> dict[str, torch.Tensor]:
        n = len(self.slot)
        plain, plain_n = self.plain[:n], self.plain_n[:n]
        gated, gated_n, df = self.hidden[:n], self.weight[:n], self.df[:n]
        S = float(self.segments)

        def weighted(u, h, c):
            if not bool((u * c).sum() > 0):
                u = torch.ones_like(u)
            return (u @ h) / (u @ c)

        out = {"mean": plain.sum(0) / plain_n.sum(), "gated-mean": gated.sum(0) / gated_n.sum()}
        for c in (*C_GRID, "ungated"):
            offset = 0.2 if c == "ungated" else c
            if self.body_tokens <= IDF_MIN_TEXT_TOKENS:
                u = torch.ones(n)
            else:
                u = torch.log((1 + S) / (df + offset * S)).clamp(min=0)
            name = "idf-c0.2-ungated" if c == "ungated" else f"idf-c{c}"
            out[name] = weighted(u, plain, plain_n) if c == "ungated" else weighted(u, gated, gated_n)
        return out


_CAPTURED: list[dict[str, torch.Tensor]] = []  # the candidates of each text pooled


class _ProbePool(RunningPool):
    """Segment IDF's running pool that records every candidate of each text it pools."""

    def __init__(self, batch, dim, pooling="segment-idf", device="cpu") -> None:
        super().__init__(batch, dim, "segment-idf", device)
        self.ids = [_ProbeStats(dim, device) for _ in range(batch)]
        self.segment_mean = RunningPool(batch, dim, "segment-mean", device)

    def add(self, rows, segment_sum, segment_count, tokens=None, whole=None):
        super().add(rows, segment_sum, segment_count, tokens)  # every text through the per-id sums
        self.segment_mean.add(rows, segment_sum, segment_count)

    def sums(self):
        units, segments = self.segment_mean.sums()
        _CAPTURED.extend({**s.candidates(), "segment-mean": units[r] / segments[r]} for r, s in enumerate(self.ids))
        return super().sums()


def candidate_vectors(model: LAM, texts: list[str], desc: str) -> dict[str, np.ndarray]:
    """Every candidate's unit vector of each text ``{name: [N, D]}``, one text per forward pass."""
    lam.runner.RunningPool = _ProbePool
    try:
        rows = []
        for text in tqdm(texts, desc=desc, unit="text"):
            _CAPTURED.clear()
            encoded = model.encode([text])[0]  # pooled by the probe, which runs as segment IDF
            rows.append(_CAPTURED[0])
            mine = rows[-1]["idf-c0.2"].numpy()  # so its idf-c0.2 candidate must be encode's vector
            assert np.allclose(mine / np.linalg.norm(mine), encoded, atol=1e-5), "probe != segment-idf pooling"
    finally:
        lam.runner.RunningPool = RunningPool
    out = {}
    for name in rows[0]:
        v = torch.stack([r[name] for r in rows]).numpy()
        out[name] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def suite() -> list[tuple[str, RetrievalSplit]]:
    splits = [(f"meetings/{v}", load_qmsum(v)) for v in ("query", "answer")]
    for variant in ("question", "reference"):
        splits += [(f"{s.info['genre']}/{variant}", s) for s in load_leval(variant)]
    return splits


def score_candidates(model: LAM, splits, label: str) -> dict[str, dict]:
    """{candidate: summarize_genres(...)} for one model (memory on or off)."""
    corpora, queries = {}, {}
    for key, split in splits:  # the query variants of one corpus load it twice: keyed by content
        corpora.setdefault(corpus_key(list(split.corpus.values())), split.corpus)
        queries.update({(key, q): t for q, t in split.queries.items()})  # query ids repeat across splits
    doc_vectors = {}
    for key, corpus in corpora.items():
        doc_vectors[key] = (list(corpus), candidate_vectors(model, list(corpus.values()), f"{label} documents"))
    qids = list(queries)
    query_vectors = candidate_vectors(model, [queries[q] for q in qids], f"{label} queries")
    row_of = {q: i for i, q in enumerate(qids)}
    results = {}
    for name in query_vectors:
        per_split = {}
        for key, split in splits:
            doc_ids, docs = doc_vectors[corpus_key(list(split.corpus.values()))]
            split_qids = list(split.queries)
            q = query_vectors[name][[row_of[(key, x)] for x in split_qids]]
            scores = q @ docs[name].T
            relevant = [split.qrels[x] for x in split_qids]
            per_split[key] = {"ndcg_at_10": 100 * ndcg_at_k(scores, doc_ids, relevant, 10), "queries": len(split_qids)}
        results[name] = summarize_genres(per_split)
    return results


def baseline(retriever, splits) -> dict:
    return summarize_genres({key: score_retrieval(retriever, split) for key, split in splits})


def worst_margins(candidates: dict[str, dict], chunk_mean: dict) -> dict[str, float]:
    """Each candidate's worst genre minus chunk-mean's score on that genre."""
    return {
        name: min(r["per_genre"][g] - chunk_mean["per_genre"][g] for g in chunk_mean["per_genre"])
        for name, r in candidates.items()
    }


def choose(candidates: dict[str, dict], margins: dict[str, float]) -> tuple[str, str]:
    """The rule above, given :func:`worst_margins`: (winner, why)."""
    qualified = [n for n, m in margins.items() if m >= -FLOOR]
    if qualified:
        best = max(qualified, key=lambda n: candidates[n]["mean_ndcg_at_10"])
        return best, f"{len(qualified)} of {len(candidates)} candidates keep every genre within {FLOOR} of chunk-mean"
    top = max(margins.values())
    close = [n for n, m in margins.items() if m >= top - 0.1]
    best = max(close, key=lambda n: candidates[n]["mean_ndcg_at_10"])
    return best, f"no candidate keeps every genre within {FLOOR} of chunk-mean: the largest worst-genre margin wins"


def markdown(record: dict) -> str:
    chunk = record["baselines"]["teacher-chunk-mean"]
    genres = list(chunk["per_genre"])
    rows = [("teacher-chunk-mean", chunk, None), ("bm25", record["baselines"]["bm25"], None)]
    rows += [(name, r, record["margins"][name]) for name, r in record["candidates"].items()]
    weights = ", ".join(f"{name} {sha[:8]}" for name, sha in record["weights_sha256"].items())
    lines = [
        f"Pooling candidates on the multi-genre suite (nDCG@10; dev data), {record['date']}, "
        f"weights {weights}, {record['seconds']:.0f} s.",
        "",
        "| candidate | " + " | ".join(genres) + " | **mean** | worst genre − chunk-mean |",
        "|---|" + "---:|" * (len(genres) + 2),
    ]
    for name, r, margin in rows:
        cells = [f"{r['per_genre'][g]:.2f}" for g in genres] + [f"**{r['mean_ndcg_at_10']:.2f}**"]
        cells.append("—" if margin is None else f"{margin:+.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Chosen: **{record['chosen']}** ({record['why']})."]
    return "\n".join(lines) + "\n"


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _memory_free_state(model) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.model.state_dict().items() if ".memory." not in k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", action="append", default=None, help="model folder, repeatable (default: the bundled weights)"
    )
    parser.add_argument("--record", default="genres-choice", help="record name under docs/research/records/pooling")
    args = parser.parse_args()
    started = time.time()
    splits = suite()
    candidates, weights, memory_free = {}, {}, []
    for path in args.model or [None]:
        model = LAMEncoder(path, reads="both").model
        name = model.config.name
        weights[name] = model.weights_sha256
        if model.config.memory:
            tag = f"{name}, memory on" if args.model and len(args.model) > 1 else "memory on"
            for pool, r in score_candidates(model, splits, tag).items():
                candidates[f"{pool} ({tag})"] = r
        state = _memory_free_state(model)
        if any(
            state.keys() == other.keys() and all(torch.equal(state[k], other[k]) for k in state)
            for other in memory_free
        ):
            continue  # the same weights but the memory: the memory-off candidates are already in
        memory_free.append(state)
        off = LAMEncoder(path, reads="none").model  # the same weights, every read gate closed
        tag = MEMORY_OFF if len(memory_free) == 1 else f"{name}, {MEMORY_OFF}"
        for pool, r in score_candidates(off, splits, tag).items():
            candidates[f"{pool} ({tag})"] = r
    baselines = {"teacher-chunk-mean": baseline(TeacherChunkMean(), splits), "bm25": baseline(BM25(), splits)}
    margins = worst_margins(candidates, baselines["teacher-chunk-mean"])
    chosen, why = choose(candidates, margins)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "weights_sha256": weights,
        "candidates": candidates,
        "baselines": baselines,
        "margins": margins,
        "chosen": chosen,
        "why": why,
        "seconds": time.time() - started,
        "rule": __doc__.split("The rule")[1].split("The record")[0].strip(),
    }
    RECORD.mkdir(parents=True, exist_ok=True)
    (RECORD / f"{args.record}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RECORD / f"{args.record}.md").write_text(markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()

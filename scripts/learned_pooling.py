"""Learned poolings of unit segment vectors against segment-mean on the multi-genre suite:
``python scripts/learned_pooling.py [--cache DIR] [--rounds 1 2 3]`` (docs/research.md, "Can a
learned pooling of segment vectors beat chunk-mean?").

The encoder is the bundled model with the memory off, so a text's unit segment vectors u_s are
the teacher's chunk vectors; they are computed once (about 30 min on 2 cores) and cached in
``--cache``. Only the pooling learns:

* attention: e = Σ_s α_s u_s, α = softmax_s(v·u_s + b·log n_s), n_s the segment's tokens;
* adapter: for a text of two or more segments, e + U Vᵀ e (rank 16 or 4, U = 0 at the start).

Training (InfoNCE, τ = 0.05, Adam lr 2e-3, up to 500 steps, the step chosen on QMSum val):
QMSum train queries and answers (64 a step) against all 162 train meetings, plus (``books``)
32 training books or articles a step, each found by one of its own segments left out of its
pool (rounds 1, 2) or by one of its sentences (round 3). Every candidate is then scored on
``lam eval --suite genres``'s splits from the cached vectors. Records go to
``docs/research/records/pooling/learned-pooling.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from lam import LAM
from lam.data_paths import require
from lam.distill.data import long_documents
from lam.evaluation.datasets import load_leval
from lam.evaluation.metrics import ndcg_at_k
from lam.evaluation.runner import summarize_genres
from lam.runner import pooled_sums

D = 384
ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "research" / "records" / "pooling"
CHUNK_MEAN = RECORD / "genres-trained.json"  # the teacher chunk-mean per genre, same suite
BOOK_SEGMENTS = 48  # a training text is pooled over its first 48 segments
BOOK_CHARS = 36_000  # pseudo-query sentences come from within them


# ----------------------------------------------------------------------------- cache
def segment_vectors(enc: LAM, texts: list[str], max_segments: int | None = None, batch: int = 8):
    """(unit segment vectors [S, D] float16, token counts [S]) of each text."""
    out = [None] * len(texts)
    order = np.argsort([-len(t) for t in texts]).tolist()
    seg = enc.segmenter
    for b in range(0, len(order), batch):
        idx = order[b : b + batch]
        per: dict[int, list] = {k: [] for k in range(len(idx))}

        def on_step(rows, sums, counts, per=per):
            for r, s, c in zip(rows, sums, counts):
                per[r].append((F.normalize(s / c, dim=-1).numpy().astype(np.float16), int(c)))

        limit = None if max_segments is None else max_segments * seg.body_len
        with torch.inference_mode():
            pooled_sums(enc.model, seg, [seg.text_segments(texts[i], limit) for i in idx], on_step=on_step)
        for k, i in enumerate(idx):
            out[i] = (np.stack([u for u, _ in per[k]]), np.array([c for _, c in per[k]], dtype=np.int32))
    return out


def build_cache(cache: Path) -> None:
    enc = LAM()
    assert not enc.model.memory_is_read(), "the bundled model must leave the memory off"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "qmsum.pkl").exists():
        data = {}
        for split in ("train", "val"):
            rows = [json.loads(line) for line in open(require(f"qmsum/{split}.jsonl"), encoding="utf-8")]
            infos = [(r["id"], i["query"], i["answer"]) for r in rows for i in r["query_info"]]
            data[split] = {
                "ids": [r["id"] for r in rows],
                "docs": segment_vectors(enc, [r["transcript"] for r in rows], batch=4),
                "owner": [o for o, _, _ in infos],
                "query": segment_vectors(enc, [q for _, q, _ in infos], batch=64),
                "answer": segment_vectors(enc, [a for _, _, a in infos], batch=64),
            }
        pickle.dump(data, open(cache / "qmsum.pkl", "wb"))
    if not (cache / "leval.pkl").exists():
        data = {}
        for variant in ("question", "reference"):
            splits = load_leval(variant)
            if "corpus" not in data:
                corpus = splits[0].corpus
                data["corpus"] = {"ids": list(corpus), "docs": segment_vectors(enc, list(corpus.values()), batch=4)}
            for s in splits:
                qids = list(s.queries)
                data[f"{s.info['genre']}/{variant}"] = {
                    "qrels": [sorted(s.qrels[q]) for q in qids],
                    "queries": segment_vectors(enc, [s.queries[q] for q in qids], batch=64),
                }
        pickle.dump(data, open(cache / "leval.pkl", "wb"))
    if not (cache / "books.pkl").exists():
        texts = list(long_documents("train"))
        docs = segment_vectors(enc, [t for _, t in texts], BOOK_SEGMENTS)
        rng = random.Random(0)
        sentences, owner = [], []
        for k, (_, text) in enumerate(texts):
            found = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text[:BOOK_CHARS])]
            found = [s for s in found if 8 <= len(s.split()) <= 40]
            for s in rng.sample(found, min(24, len(found))):
                sentences.append(s)
                owner.append(k)
        vectors = enc.encode(sentences, batch_size=64, show_progress_bar=False).astype(np.float32)
        pickle.dump({"docs": docs, "sentences": vectors, "owner": np.array(owner)}, open(cache / "books.pkl", "wb"))


# ----------------------------------------------------------------------------- pooling
def pad(items, cap=None):
    S = max(len(u) for u, _ in items) if cap is None else cap
    U, C = torch.zeros(len(items), S, D), torch.ones(len(items), S)
    M = torch.zeros(len(items), S, dtype=torch.bool)
    for i, (u, c) in enumerate(items):
        n = min(len(u), S)
        U[i, :n] = torch.from_numpy(u[:n].astype(np.float32))
        C[i, :n] = torch.from_numpy(c[:n].astype(np.float32))
        M[i, :n] = True
    return U, C, M


class Pool(torch.nn.Module):
    def __init__(self, attention: bool, adapter: bool, rank: int = 16) -> None:
        super().__init__()
        self.attention, self.adapter = attention, adapter
        self.v, self.b = torch.nn.Parameter(torch.zeros(D)), torch.nn.Parameter(torch.zeros(()))
        self.U = torch.nn.Parameter(torch.zeros(D, rank))
        self.V = torch.nn.Parameter(torch.randn(D, rank) * 0.05)

    def forward(self, U, C, M):
        if self.attention:
            a = (U @ self.v + self.b * torch.log(C.clamp(min=1))).masked_fill(~M, float("-inf"))
            e = (torch.softmax(a, dim=1).unsqueeze(-1) * U).sum(1)
        else:
            e = (U * M.unsqueeze(-1)).sum(1) / M.sum(1, keepdim=True)
        if self.adapter:
            e = e + (M.sum(1) >= 2).float().unsqueeze(-1) * ((e @ self.V) @ self.U.T)
        return F.normalize(e, dim=-1)


class Data:
    def __init__(self, cache: Path) -> None:
        q = pickle.load(open(cache / "qmsum.pkl", "rb"))
        train, val = q["train"], q["val"]
        self.tdocs = pad(train["docs"])
        owner = [train["ids"].index(o) for o in train["owner"]]
        self.tq, self.towner = pad(train["query"] + train["answer"]), torch.tensor(owner * 2)
        self.vdocs, self.vids = pad(val["docs"]), val["ids"]
        self.vq, self.va, self.vrel = pad(val["query"]), pad(val["answer"]), [{o} for o in val["owner"]]
        self.leval = pickle.load(open(cache / "leval.pkl", "rb"))
        b = pickle.load(open(cache / "books.pkl", "rb"))
        self.books_segments = pad([x for x in b["docs"] if len(x[0]) >= 4])
        keep = [k for k, x in enumerate(b["docs"]) if len(x[0]) >= 4 and (b["owner"] == k).any()]
        self.books_sentences = (
            pad([b["docs"][k] for k in keep]),
            [torch.from_numpy(b["sentences"][b["owner"] == k]) for k in keep],
        )

    def val(self, pool) -> list[float]:
        with torch.no_grad():
            d = pool(*self.vdocs).numpy()
            return [100 * ndcg_at_k(pool(*x).numpy() @ d.T, self.vids, self.vrel, 10) for x in (self.vq, self.va)]

    def genres(self, pool) -> dict:
        per = {}
        with torch.no_grad():
            d = pool(*self.vdocs).numpy()
            for name, x in (("query", self.vq), ("answer", self.va)):
                per[f"meetings/{name}"] = {
                    "ndcg_at_10": 100 * ndcg_at_k(pool(*x).numpy() @ d.T, self.vids, self.vrel, 10)
                }
            docs = pool(*pad(self.leval["corpus"]["docs"])).numpy()
            for key, s in self.leval.items():
                if key != "corpus":
                    q = pool(*pad(s["queries"])).numpy()
                    relevant = [set(r) for r in s["qrels"]]
                    per[key] = {"ndcg_at_10": 100 * ndcg_at_k(q @ docs.T, self.leval["corpus"]["ids"], relevant, 10)}
        return summarize_genres(per)


def train(data: Data, attention, adapter, books, rank=16, penalty=0.0, seed=None, steps=500, every=25):
    """Train one pooling; returns (pool at the best QMSum val step, that step, its val scores)."""
    if seed is not None:
        torch.manual_seed(seed)
    pool = Pool(attention, adapter, rank)
    opt = torch.optim.Adam(pool.parameters(), lr=2e-3)
    best = (float(np.mean(data.val(pool))), 0, copy.deepcopy(pool.state_dict()), data.val(pool))
    for step in range(1, steps + 1):
        idx = torch.randint(len(data.towner), (64,))
        d, q = pool(*data.tdocs), pool(*(x[idx] for x in data.tq))
        loss = F.cross_entropy(q @ d.T / 0.05, data.towner[idx])
        if books == "segment":
            BU, BC, BM = data.books_segments
            bi = torch.randperm(len(BU))[:32]
            U, C, M = BU[bi], BC[bi], BM[bi].clone()
            s = torch.stack([torch.randint(int(m.sum()), ()) for m in M])
            qv = U[torch.arange(32), s]
            M[torch.arange(32), s] = False
        elif books == "sentence":
            (BU, BC, BM), sentences = data.books_sentences
            bi = torch.randperm(len(BU))[:32]
            U, C, M = BU[bi], BC[bi], BM[bi]
            qv = torch.stack([sentences[k][torch.randint(len(sentences[k]), ())] for k in bi.tolist()])
        if books:
            loss = loss + F.cross_entropy(F.normalize(qv, dim=-1) @ pool(U, C, M).T / 0.05, torch.arange(32))
            if penalty:
                e = (U * M.unsqueeze(-1)).sum(1) / M.sum(1, keepdim=True)
                loss = loss + penalty * ((e @ pool.V) @ pool.U.T).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0:
            scores = data.val(pool)
            if np.mean(scores) > best[0]:
                best = (float(np.mean(scores)), step, copy.deepcopy(pool.state_dict()), scores)
    pool.load_state_dict(best[2])
    return pool, best[1], best[3]


ROUNDS = {  # name: (attention, adapter, books, rank, penalty, seed); seed None: the global stream
    1: [
        (f"{name}{', + books' if books else ''}", att, ada, books, 16, 0.0, None)
        for books in (None, "segment")
        for name, att, ada in (
            ("attention", True, False),
            ("adapter", False, True),
            ("attention + adapter", True, True),
        )
    ],
    2: [
        ("attention + adapter, + books, penalty", True, True, "segment", 16, 1.0, None),
        ("attention + adapter, + books, rank 4", True, True, "segment", 4, 0.0, None),
        ("attention + adapter, + books, rank 4, penalty", True, True, "segment", 4, 1.0, None),
    ],
    3: [
        (f"attention + adapter, + book sentences, rank {rank}, seed {seed}", True, True, "sentence", rank, 0.0, seed)
        for rank in (4, 16)
        for seed in (0, 1, 2)
    ],
}


def verdict(result: dict, base: dict, chunk: dict) -> list[str]:
    """What fails the rule: genres under chunk-mean − 1, the mean under segment-mean + 1, QMSum val."""
    out = [f"{g} {result['per_genre'][g] - c:+.2f}" for g, c in chunk.items() if result["per_genre"][g] < c - 1]
    if result["mean_ndcg_at_10"] < base["mean_ndcg_at_10"] + 1.0:
        out.append("mean under segment-mean + 1")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lam-learned-pooling"))
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    build_cache(args.cache)
    data = Data(args.cache)
    chunk = json.loads(CHUNK_MEAN.read_text())["baselines"]["teacher-chunk-mean"]
    base = data.genres(Pool(False, False))
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "segment-mean": {"genres": base, "val": data.val(Pool(False, False))},
    }
    for r in args.rounds:
        torch.manual_seed(0)  # each round's runs draw from one stream, in order
        if r == 1:
            Pool(False, False)  # as first run, round 1 drew its segment-mean pool's V from the stream first
        for name, att, ada, books, rank, penalty, seed in ROUNDS[r]:
            started = time.time()
            pool, step, val = train(data, att, ada, books, rank, penalty, seed)
            g = data.genres(pool)
            fails = verdict(g, base, chunk["per_genre"])
            if val[0] < record["segment-mean"]["val"][0] or val[1] < record["segment-mean"]["val"][1]:
                fails.append("QMSum val under segment-mean")
            record[name] = {
                "round": r,
                "step": step,
                "val": val,
                "genres": g,
                "fails": fails,
                "seconds": time.time() - started,
            }
            print(
                f"round {r} | {name} | step {step} | val {val[0]:.2f} / {val[1]:.2f} | "
                f"genres {g['mean_ndcg_at_10']:.2f} | {'; '.join(fails) or 'passes'}",
                flush=True,
            )
    (RECORD / "learned-pooling.json").write_text(json.dumps(record, indent=1) + "\n")
    (RECORD / "learned-pooling.md").write_text(markdown(record, chunk))


def markdown(record: dict, chunk: dict) -> str:
    genres = list(chunk["per_genre"])
    lines = [
        f"Learned poolings of unit segment vectors (memory off) on the multi-genre suite, nDCG@10, dev data, "
        f"{record['date']}. `python scripts/learned_pooling.py`.",
        "",
        "| candidate | round | step | QMSum val q / a | " + " | ".join(genres) + " | **mean** | fails |",
        "|---|---:|---:|---|" + "---:|" * (len(genres) + 1) + "---|",
    ]
    rows = [("teacher chunk-mean", {"genres": chunk, "round": "", "step": "", "val": None, "fails": []})]
    rows += [(k, v) for k, v in record.items() if k != "date"]
    for name, r in rows:
        g = r["genres"]
        val = "" if r.get("val") is None else f"{r['val'][0]:.2f} / {r['val'][1]:.2f}"
        cells = [f"{g['per_genre'][x]:.2f}" for x in genres] + [f"**{g['mean_ndcg_at_10']:.2f}**"]
        lines.append(
            f"| {name} | {r.get('round', '')} | {r.get('step', '')} | {val} | "
            + " | ".join(cells)
            + f" | {'; '.join(r.get('fails', []))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

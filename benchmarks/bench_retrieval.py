"""Retrieval benchmark: indexing throughput, search latency at 1K and 10K documents, index size.

    python benchmarks/bench_retrieval.py                 # 1K and 10K documents, 1M-token file
    python benchmarks/bench_retrieval.py --docs 1000     # a quick run

Corpus: paragraphs of WikiText-103, then Gutenberg (../shared/data/longdocs), packed into
documents of about ``--doc-words`` words. Queries: one sentence of a random indexed document each (known-item
search, so recall@1 is printed as a sanity figure next to the latencies). The index is a file
on disk (SQLite, WAL). Latency is per query, end to end (encode the query, scan, fuse, read
the passage). At 10K documents it is measured twice: exact scan, and with the ANN (usearch)
that takes over above ``exact_limit``.

The long-file row indexes one file of N tokens with ``Index.index_file`` in a fresh process and
reports the peak RSS growth (VmHWM reset after the model is loaded and warmed up).

Writes benchmarks/results/retrieval.json and retrieval.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import DATA, book_pieces, in_fresh_process, machine, reset_peak_rss, rss_kb, write_results


def _paragraphs():
    """WikiText-103 paragraphs, then Gutenberg paragraphs (WikiText's prefix runs out first)."""
    with gzip.open(DATA / "longdocs" / "wikitext103_tokenized_train_prefix.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            for para in json.loads(line)["text"].split("\n"):
                if not para.strip().startswith("="):
                    yield "wiki", para.strip()
    with gzip.open(DATA / "longdocs" / "gutenberg.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            for para in json.loads(line)["text"].split("\n\n"):
                yield "book", " ".join(para.split())


def corpus_documents(n_docs: int, doc_words: int) -> list[tuple[str, str]]:
    """Documents of about ``doc_words`` words, packed from paragraphs of at least 20 words."""
    docs, current, words = [], [], 0
    for source, para in _paragraphs():
        if len(para.split()) < 20:
            continue
        current.append(para)
        words += len(para.split())
        if words >= doc_words:
            docs.append((f"{source}{len(docs)}", "\n".join(current)))
            current, words = [], 0
            if len(docs) == n_docs:
                return docs
    raise SystemExit(f"only {len(docs)} documents of {doc_words} words in the corpus")


def known_item_queries(docs: list[tuple[str, str]], n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for doc_id, text in rng.sample(docs, n):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+| \. ", text.replace("\n", " ")) if 8 <= len(s.split()) <= 40]
        if sentences:
            out.append((doc_id, rng.choice(sentences)))
    return out


def latency(index, queries: list[tuple[str, str]]) -> dict:
    index.search("warm up")
    times, hits = [], 0
    for doc_id, query in queries:
        t = time.perf_counter()
        top = index.search(query, top_k=10)
        times.append(time.perf_counter() - t)
        hits += bool(top) and top[0].doc_id == doc_id
    ms = np.array(times) * 1000
    return {
        "queries": len(queries),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "recall_at_1": hits / len(queries),
        "mode": index.stats()["search"],
    }


def long_file(n_tokens: int) -> dict:
    """Index one n-token file in this process; peak RSS growth after warm-up."""
    from lam import LAM, Index

    lam = LAM()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "book.txt"
        with open(path, "w", encoding="utf-8") as out:  # write about n_tokens of Gutenberg text
            taken = 0
            for piece in book_pieces():
                out.write(piece)
                taken += lam.count_tokens(piece)
                if taken >= n_tokens:
                    break
        index = Index(Path(tmp) / "long.lam", lam)
        index.index("warm", "A short warm-up document. " * 200)
        reset_peak_rss()
        base = rss_kb()
        t = time.perf_counter()
        index.index_file("book", path)
        seconds = time.perf_counter() - t
        stats = index.stats()
        tokens = (
            stats["tokens"]
            - index.store.db.execute("SELECT n_tokens FROM documents WHERE doc_id = 'warm'").fetchone()[0]
        )
        growth = (rss_kb("VmHWM") - base) / 1024
        index.close()  # the last connection folds the write-ahead log into the file: what stays on disk
        on_disk = sum(p.stat().st_size for p in Path(tmp).glob("long.lam*"))
        return {
            "tokens": tokens,
            "seconds": seconds,
            "tokens_per_second": tokens / seconds,
            "peak_rss_growth_mb": growth,
            "index_bytes_per_token": on_disk / stats["tokens"],
        }


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Retrieval benchmark — {m['cpu']}, {m['torch_threads']} threads, torch {m['torch']}; {result['date']}.",
        "",
        "| documents | tokens | index tok/s | index size | bytes/token | search | p50 ms | p95 ms | recall@1 |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in result["scales"]:
        for lat in r["latency"]:
            lines.append(
                f"| {r['documents']:,} | {r['tokens']:,} | {r['index_tokens_per_second']:,.0f} | "
                f"{r['bytes'] / 2**20:.1f} MiB | {r['bytes_per_token']:.1f} | {lat['mode']} | "
                f"{lat['p50_ms']:.1f} | {lat['p95_ms']:.1f} | {lat['recall_at_1']:.2f} |"
            )
    for r in result.get("long_files", []):
        lines += [
            "",
            f"One {r['tokens']:,}-token file through `index_file`: {r['seconds']:.0f} s, "
            f"{r['tokens_per_second']:,.0f} tokens/s, peak RSS growth {r['peak_rss_growth_mb']:.1f} MB, "
            f"{r['index_bytes_per_token']:.1f} bytes/token on disk.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="*", default=[1000, 10000], help="index sizes to measure")
    parser.add_argument("--doc-words", type=int, default=120)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--long-tokens", type=int, nargs="*", default=[1_000_000], help="index_file sizes")
    parser.add_argument("--one-file", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_file:
        print(json.dumps(long_file(args.one_file)))
        return
    from lam import LAM, Index

    lam = LAM()
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "scales": [], "long_files": []}
    docs = corpus_documents(max(args.docs), args.doc_words)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index(Path(tmp) / "bench.lam", lam)
        done, seconds = 0, 0.0
        for size in sorted(args.docs):
            t = time.perf_counter()
            index.index_many(docs[done:size], batch_size=32)
            seconds += time.perf_counter() - t
            done = size
            stats = index.stats()
            queries = known_item_queries(docs[:size], args.queries)
            row = {
                "documents": size,
                "tokens": stats["tokens"],
                "passages": stats["passages"],
                "index_seconds": seconds,
                "index_tokens_per_second": stats["tokens"] / seconds,
                "bytes": stats["bytes"],
                "bytes_per_token": stats["bytes_per_token"],
                "latency": [latency(index, queries)],
            }
            if size >= 10_000:  # the same index searched through the ANN
                ann = Index(Path(tmp) / "bench.lam", lam, exact_limit=size // 2)
                row["latency"].append(latency(ann, queries))
                ann.close()
            result["scales"].append(row)
            print(row, flush=True)
        index.close()
    for n in args.long_tokens:
        result["long_files"].append(in_fresh_process(__file__, "--one-file", n))
        print(result["long_files"][-1], flush=True)
    write_results("retrieval", result, markdown(result))


if __name__ == "__main__":
    main()

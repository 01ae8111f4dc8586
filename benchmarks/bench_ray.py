"""lam.distributed on this machine: documents/s with 1 and 2 Ray workers.

    pip install 'lam[ray]'
    python benchmarks/bench_ray.py            # 600 Gutenberg passages of 100-400 words (a few minutes)

A local Ray cluster with this machine's CPUs; each worker is one LAM actor with one CPU and one
torch thread. The same corpus (JSON Lines, written once) is embedded with 1 worker and with 2;
the rows/s, tokens/s and per-worker rate go to benchmarks/results/ray.{json,md}. The README's
scaling plan for N machines starts from the per-worker rate measured here.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import ray
from bench_core import book_pieces, machine, write_results

from lam.distributed import embed_corpus, iter_corpus_rows


def corpus(path: Path, n: int, seed: int = 0) -> int:
    words = " ".join(p for _, p in zip(range(8), book_pieces())).split()
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            start = rng.randrange(len(words) - 400)
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(words[start : start + rng.randint(100, 400)])}) + "\n")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lam-bench-ray-"))
    source = tmp / "corpus.jsonl"
    corpus(source, args.docs)
    ray.init(include_dashboard=False, log_to_driver=False)
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "documents": args.docs, "runs": []}
    embed_corpus(source, tmp / "warm", workers=1)  # Ray's own start-up (workers, imports) is not timed below
    for n in args.workers:
        out = tmp / f"out-{n}"
        start = time.perf_counter()
        info = embed_corpus(source, out, workers=n, cpus_per_worker=1)
        seconds = time.perf_counter() - start
        tokens = sum(r["tokens"] for r in iter_corpus_rows(out, columns=["tokens"]))
        row = {"workers": n, "rows": info["rows"], "tokens": tokens, "seconds": seconds}
        row.update({"rows_per_s": info["rows"] / seconds, "tokens_per_s": tokens / seconds})
        row["tokens_per_s_per_worker"] = row["tokens_per_s"] / n
        result["runs"].append(row)
        print(row, flush=True)
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    base = result["runs"][0]
    lines = [
        f"`embed_corpus` on a local Ray cluster, {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{args.docs} documents of 100-400 words. {result['date']}.",
        "",
        "| workers | documents/s | tokens/s | tokens/s per worker | speed-up |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['workers']} | {r['rows_per_s']:.1f} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s_per_worker']:,.0f} | "
        f"{r['rows_per_s'] / base['rows_per_s']:.2f}× |"
        for r in result["runs"]
    ]
    write_results("ray", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Load test of ``lam serve`` on loopback: concurrent clients, mixed request sizes.

    pip install 'lam[server]' httpx
    python benchmarks/bench_server.py                       # 32 clients x 1000 requests
    python benchmarks/bench_server.py --clients 4 --requests 50   # a quick look

A real server process (``--backend onnx`` by default, micro-batching on) answers
``--clients`` concurrent clients, each sending ``--requests`` requests one after another.
Request sizes are drawn (seeded) from STS-B *train* sentences: 70% one sentence, 20% 2-8, 8%
9-32, 2% one 600-1,200-token Gutenberg passage; half ask for base64, a quarter for 128
dimensions. Clients and server share this machine's cores, so throughput is a floor.
Writes benchmarks/results/server.{json,md}: errors, latency p50/p95/p99, requests/s, texts/s,
tokens/s, the server's mean batch, and its RSS before, at peak and after.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import time
from pathlib import Path

import httpx
import numpy as np
from bench_core import DATA, book_pieces, machine, rss_kb, write_results

from lam.server.process import ServerProcess

RSS_BOUND_MB = 64  # stated before measuring: growth allowed over the run (allocator arenas, caches)


def rss_mb(pid: int) -> float:
    return rss_kb("VmRSS", pid) / 1024


def request_mix(n: int, seed: int = 0) -> list[dict]:
    with open(DATA / "stsb" / "train.csv", newline="", encoding="utf-8") as f:
        sentences = [r["sentence1"] for r in csv.DictReader(f)]
    words = " ".join(p for _, p in zip(range(4), book_pieces())).split()
    rng = random.Random(seed)
    bodies = []
    for _ in range(n):
        u = rng.random()
        if u < 0.70:
            texts = [rng.choice(sentences)]
        elif u < 0.90:
            texts = rng.sample(sentences, rng.randint(2, 8))
        elif u < 0.98:
            texts = rng.sample(sentences, rng.randint(9, 32))
        else:
            start = rng.randrange(len(words) - 1000)
            texts = [" ".join(words[start : start + rng.randint(500, 1000)])]  # ~600-1,200 tokens
        body: dict = {"input": texts if len(texts) > 1 or rng.random() < 0.5 else texts[0], "model": "lam"}
        if rng.random() < 0.5:
            body["encoding_format"] = "base64"
        if rng.random() < 0.25:
            body["dimensions"] = 128
        bodies.append(body)
    return bodies


async def client(url: str, bodies: list[dict], latencies: list[float], errors: list[str], tokens: list[int]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for body in bodies:
            start = time.perf_counter()
            try:
                answer = await http.post("/v1/embeddings", json=body)
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code}: {answer.text[:200]}")
                else:
                    tokens.append(answer.json()["usage"]["total_tokens"])
            except httpx.HTTPError as err:
                errors.append(repr(err))
            latencies.append(time.perf_counter() - start)


async def load(url: str, per_client: list[list[dict]], pid: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    tokens: list[int] = []
    peak = [rss_mb(pid)]

    async def sample_rss() -> None:
        while True:
            peak[0] = max(peak[0], rss_mb(pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    start = time.perf_counter()
    await asyncio.gather(*(client(url, bodies, latencies, errors, tokens) for bodies in per_client))
    seconds = time.perf_counter() - start
    sampler.cancel()
    return {"seconds": seconds, "latencies": latencies, "errors": errors, "tokens": sum(tokens), "peak_rss_mb": peak[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=1000, help="per client")
    parser.add_argument("--backend", default="onnx", choices=["torch", "onnx"])
    parser.add_argument("--name", default="server")
    args = parser.parse_args()

    bodies = request_mix(args.clients * args.requests)
    texts = sum(1 if isinstance(b["input"], str) else len(b["input"]) for b in bodies)
    per_client = [bodies[i :: args.clients] for i in range(args.clients)]
    log = Path("/tmp") / f"lam-bench-{args.name}.log"
    with ServerProcess(["--backend", args.backend, "--queue-size", "256"], log=log) as server:
        asyncio.run(load(server.url, [request_mix(50, seed=1)], server.pid))  # warm-up, other seed
        rss_before = rss_mb(server.pid)
        run = asyncio.run(load(server.url, per_client, server.pid))
        rss_after = rss_mb(server.pid)
        metrics = httpx.get(server.url + "/metrics").json()
    lat = np.array(run["latencies"]) * 1000
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "backend": args.backend,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "requests": len(bodies),
        "texts": texts,
        "errors": len(run["errors"]),
        "error_samples": run["errors"][:5],
        "seconds": run["seconds"],
        "requests_per_s": len(bodies) / run["seconds"],
        "texts_per_s": texts / run["seconds"],
        "tokens_per_s": run["tokens"] / run["seconds"],
        "latency_ms": {q: float(np.percentile(lat, int(q[1:]))) for q in ("p50", "p95", "p99")},
        "mean_batch_texts": metrics["mean_batch_texts"],
        "server_requests": metrics["requests"],
        "rss_mb": {"before": rss_before, "peak": run["peak_rss_mb"], "after": rss_after},
        "rss_growth_mb": rss_after - rss_before,
        "rss_bound_mb": RSS_BOUND_MB,
    }
    m = result["machine"]
    table = "\n".join(
        [
            f"`lam serve --backend {args.backend}` on loopback, {m['cpu']}, {m['cores']} cores (clients on the same "
            f"cores). {result['date']}.",
            "",
            "| clients × requests | errors | req/s | texts/s | tokens/s | p50 ms | p95 ms | p99 ms | mean batch | "
            "RSS before → peak → after MB | growth (bound) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
            f"| {args.clients} × {args.requests} | {result['errors']} | {result['requests_per_s']:.0f} | "
            f"{result['texts_per_s']:.0f} | {result['tokens_per_s']:.0f} | "
            f"{result['latency_ms']['p50']:.0f} | {result['latency_ms']['p95']:.0f} | "
            f"{result['latency_ms']['p99']:.0f} | {result['mean_batch_texts']:.1f} | "
            f"{rss_before:.0f} → {run['peak_rss_mb']:.0f} → {rss_after:.0f} | "
            f"{result['rss_growth_mb']:+.1f} (≤ {RSS_BOUND_MB}) |",
        ]
    )
    write_results(args.name, result, table + "\n")
    if result["errors"] or result["rss_growth_mb"] > RSS_BOUND_MB:
        raise SystemExit("load test failed: errors or RSS growth over the bound")


if __name__ == "__main__":
    main()

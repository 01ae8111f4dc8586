"""Core benchmark: LAM against sentence-transformers, short to 1M tokens, and the fp32 limit.

    python benchmarks/bench_core.py                  # everything (about 15 minutes here)
    python benchmarks/bench_core.py --quick          # 1K/10K/100K tokens only

Writes benchmarks/results/core.{json,md,png}. In one run, with the same threads:

* short: the STS-B test sentences at batch 32 and 128, sentences/s of every LAM mode (torch
  fp32, int8 and bf16; ``backend="onnx"`` fp32 and int8) and ``SentenceTransformer(all-MiniLM-L6-v2)``,
  and the ratio;
* medium: 256- and 512-token documents, tokens/s, the same modes (sentence-transformers with
  ``max_seq_length`` 512, so it reads every token of the 256-token ones and 510 of the 512:
  its limit counts [CLS] and [SEP]; LAM reads a 512-token text as three segments);
* long: one streamed text of 1K, 10K, 100K and 1M tokens for each torch mode (fp32, int8,
  bf16; the ONNX modes run long text on torch), each size in a fresh process
  (``--one-size N``): the kernel's peak-RSS counter (VmHWM) is reset after the model is loaded
  and warmed up, and the growth is the new peak minus the RSS then; seconds against tokens are
  fitted by a line (R²). The teacher cannot read such texts, so the comparison is the teacher
  on 256-token chunks, averaged (the usual workaround), at the same sizes;
* the limit: the model's FLOPs per token (counted by torch's FlopCounterMode on one full
  segment) and this machine's fp32 matmul GFLOP/s at the model's shape, the fastest of the
  measurements at the start, after each long text (in its process) and at the end, so every
  tokens/s is also a fraction of what the arithmetic allows; the record states the shipped fp32
  model's long-text speed as that fraction (and against the rate measured right after the same
  text) and the bf16 mode's as a multiple of fp32.
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

import numpy as np
import torch

from lam.evaluation.encoders import load_teacher

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


def rss_kb(field: str = "VmRSS", pid: int | str = "self") -> int:
    for line in open(f"/proc/{pid}/status"):
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


def in_fresh_process(script: str, flag: str, n: int, *extra: str) -> dict:
    """Run ``script flag n [extra]`` in a new Python process (a clean peak-RSS counter); its last line is JSON."""
    proc = subprocess.run([sys.executable, script, flag, str(n), *extra], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(stem: str, result: dict, table: str) -> None:
    """benchmarks/results/<stem>.json and <stem>.md; the table is printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(table)
    print(table)


def one_size(n_tokens: int, quantize: str | None = None) -> dict:
    from lam import LAM

    model = LAM(quantize=quantize)
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
    rate = matmul_gflops(*segment_shape())  # the limit at this moment, in this process
    return {
        "matmul_gflops": rate,
        "tokens": n_tokens,
        "quantize": quantize,
        "seconds": seconds,
        "tokens_per_s": n_tokens / seconds,
        "segments": stream.segments,
        "rss_before_mb": rss_before / 1024,
        "peak_rss_growth_mb": (peak - rss_before) / 1024,
    }


MODES = {  # every mode a user can choose: name -> LAM(**options)
    "lam": {},
    "lam-int8": {"quantize": "int8"},
    "lam-bf16": {"quantize": "bf16"},
    "lam-onnx": {"backend": "onnx"},  # one-segment texts on ONNX Runtime
    "lam-onnx-int8": {"backend": "onnx", "quantize": "int8"},  # ... with every MatMul on int8
}
LONG_MODES = ("lam", "lam-int8", "lam-bf16")  # long text runs on torch in every mode


def encoders() -> dict:
    """Every LAM mode and sentence-transformers with the teacher's weights (those installed)."""
    from lam import LAM

    out = {}
    for name, options in MODES.items():
        try:
            out[name] = LAM(**options)
        except ImportError as err:
            print(f"{err}: no {name} rows", file=sys.stderr)
    try:
        out["sentence-transformers"] = load_teacher()[0]
    except ImportError:
        print("sentence-transformers / teacher not installed: LAM only", file=sys.stderr)
    return out


def best_seconds(encode, texts: list[str], batch_size: int, repeats: int = 2) -> float:
    encode(texts[:64], batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        encode(texts, batch_size=batch_size, normalize_embeddings=True)
        best = min(best, time.perf_counter() - t)
    return best


def short_sentences(models: dict, batch_sizes=(32, 128)) -> list[dict]:
    with open(DATA / "stsb" / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
    out = []
    for bs in batch_sizes:
        for name, enc in models.items():
            seconds = best_seconds(enc.encode, sentences, bs)
            out.append({"encoder": name, "batch_size": bs, "sentences": len(sentences), "seconds": seconds})
            out[-1]["sentences_per_s"] = len(sentences) / seconds
            print(out[-1], flush=True)
    return out


def documents_of(n_tokens: int, count: int, counter) -> list[str]:
    """``count`` Gutenberg passages of exactly ``n_tokens`` WordPiece tokens each."""
    docs, pieces = [], book_pieces()
    words: list[str] = []
    while len(docs) < count:
        words += next(pieces).split()
        while len(words) > 2 * n_tokens:
            take = n_tokens  # words, then trimmed to the token count
            text = " ".join(words[:take])
            while counter(text) > n_tokens:
                take -= max(1, (counter(text) - n_tokens) // 2)
                text = " ".join(words[:take])
            del words[:take]
            if counter(text) == n_tokens:
                docs.append(text)
    return docs[:count]


def medium_documents(models: dict, sizes=(256, 512), count: int = 128, batch_size: int = 32) -> list[dict]:
    lam = models["lam"]
    out = []
    for n in sizes:
        docs = documents_of(n, count, lam.count_tokens)
        for name, enc in models.items():
            if name == "sentence-transformers":
                enc.max_seq_length = 512  # read every token, as LAM does
            seconds = best_seconds(enc.encode, docs, batch_size)
            out.append({"encoder": name, "doc_tokens": n, "documents": count, "seconds": seconds})
            out[-1]["tokens_per_s"] = n * count / seconds
            print(out[-1], flush=True)
    return out


def chunk_mean(sizes: list[int]) -> list[dict]:
    """The evaluation's teacher chunk-mean (``TeacherChunkMean``: 256-token chunks, averaged) on one
    text of each size: seconds, tokenisation included, as for LAM."""
    from lam.evaluation.encoders import TeacherChunkMean

    encoder = TeacherChunkMean()
    count = encoder.model.tokenizer
    out = []
    for n in sizes:
        text = one_text(n, lambda t: len(count(t, add_special_tokens=False, verbose=False)["input_ids"]))
        spans = count(text, add_special_tokens=False, verbose=False, return_offsets_mapping=True)["offset_mapping"]
        text = text[: spans[n - 1][1]]  # exactly n tokens, as LAM's texts
        tokens = len(count(text, add_special_tokens=False, verbose=False)["input_ids"])
        encoder.embed([text[:20000]], "document")  # warm-up
        t = time.perf_counter()
        encoder.embed([text], "document")
        seconds = time.perf_counter() - t
        out.append({"size": n, "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds})
        print(out[-1], flush=True)
    return out


def one_text(n_tokens: int, counter) -> str:
    """Gutenberg text of at least ``n_tokens`` tokens (whole pieces, counted piece by piece)."""
    text, tokens, pieces = [], 0, book_pieces()
    while tokens < n_tokens:
        text.append(next(pieces))
        tokens += counter(text[-1])
    return "".join(text)


def segment_shape() -> tuple[int, int, int]:
    """(W, d, ff): the shape of the model's largest matmul, a segment through ``ffn_in``."""
    from lam import LAMConfig

    c = LAMConfig()
    return c.segment_len, c.hidden_size, c.intermediate_size


def matmul_gflops(m: int, k: int, n: int) -> float:
    """fp32 GFLOP/s of ``[m, k] @ [k, n]`` here, the best of five timings (one slow timing must
    not lower a limit)."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps = max(3, int(2e10 / (2 * m * k * n)))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * m * k * n * reps / best / 1e9


def machine_limit() -> dict:
    """The model's FLOPs per token and the fp32 matmul rate here, at the model's own shapes."""
    from torch.utils.flop_counter import FlopCounterMode

    from lam import LAM

    lam = LAM()
    W = lam.config.segment_len
    ids = torch.randint(1000, 2000, (1, W))
    mask = torch.ones(1, W, dtype=torch.bool)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        lam.model.forward_segment(ids, mask, None, False)
    counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    d = lam.config.hidden_size
    if not any("attention" in op for op in counts):  # CPU SDPA is not counted: QKᵀ and AV, 2·W·d each
        counts["attention (QKᵀ, AV)"] = lam.config.num_layers * 2 * (2 * W * W * d)
    flops_per_token = sum(counts.values()) / W
    rates = {"segment ffn_in": matmul_gflops(*segment_shape()), "large": matmul_gflops(2048, 2048, 2048)}
    return {
        "flops_per_token": flops_per_token,
        "flops_by_op": counts,
        "matmul_gflops": rates,
        "limit_tokens_per_s": rates["segment ffn_in"] * 1e9 / flops_per_token,
    }


def best_limit(result: dict) -> dict:
    """The run's limit from the fastest matmul rate measured in it: at the start, beside every
    long-text measurement (same process, right after it) and at the end. This machine's speed
    moves by up to a third between minutes, and a limit is what the arithmetic allows at best."""
    limit = dict(result["limit"])
    seen = [("start", limit["matmul_gflops"]["segment ffn_in"])]
    seen += [(f"{mode} {r['tokens']}", r["matmul_gflops"]) for mode, rows in result["long"].items() for r in rows]
    seen.append(("end", matmul_gflops(*segment_shape())))
    best = max(rate for _, rate in seen)
    limit["rates_seen_gflops"] = dict(seen)
    limit["matmul_gflops"] = {**limit["matmul_gflops"], "segment ffn_in": best}
    limit["limit_tokens_per_s"] = best * 1e9 / limit["flops_per_token"]
    return limit


def linear_fit(rows: list[dict]) -> dict:
    """seconds = a + b · tokens, least squares, and R²."""
    x = np.array([r["tokens"] for r in rows], dtype=float)
    y = np.array([r["seconds"] for r in rows], dtype=float)
    b, a = np.polyfit(x, y, 1)
    residual = ((y - (a + b * x)) ** 2).sum()
    r2 = 1 - residual / ((y - y.mean()) ** 2).sum()
    return {"intercept_s": a, "seconds_per_token": b, "r2": r2}


def long_text_encode(n_tokens: int = 100_000) -> list[dict]:
    """`encode` on one in-memory string of about n_tokens tokens, in each torch mode."""
    from lam import LAM

    out, text = [], None
    for mode in LONG_MODES:
        model = LAM(**MODES[mode])
        text = text or one_text(n_tokens, model.count_tokens)
        tokens = model.count_tokens(text)
        model.encode(text[:20000])
        t = time.perf_counter()
        model.encode(text)
        seconds = time.perf_counter() - t
        out.append({"mode": mode, "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds})
        print(out[-1], flush=True)
    return out


def markdown(result: dict) -> str:
    m, limit = result["machine"], result["limit"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads). "
        f"{result['date']}.",
        "",
        f"The limit: {limit['flops_per_token'] / 1e6:.1f} MFLOP per token (one full segment: FlopCounterMode, plus "
        "attention's QKᵀ and AV, which it does not see on CPU); "
        f"fp32 matmul {limit['matmul_gflops']['segment ffn_in']:.0f} GFLOP/s at the model's shape "
        f"(the fastest of {len(limit.get('rates_seen_gflops', {})) or 1} measurements through the run) "
        f"({limit['matmul_gflops']['large']:.0f} at 2048³), so at most "
        f"**{limit['limit_tokens_per_s']:,.0f} tokens/s** in fp32.",
        "",
    ]
    st = {(r["batch_size"]): r["sentences_per_s"] for r in result["short"] if r["encoder"] == "sentence-transformers"}
    lines += ["| short sentences (STS-B test) | batch | sentences/s | × sentence-transformers |"]
    lines += ["|---|---:|---:|---:|"]
    for r in result["short"]:
        ratio = r["sentences_per_s"] / st[r["batch_size"]] if r["batch_size"] in st else float("nan")
        lines.append(f"| {r['encoder']} | {r['batch_size']} | {r['sentences_per_s']:.0f} | {ratio:.2f} |")
    lines.append("")
    st = {r["doc_tokens"]: r["tokens_per_s"] for r in result["medium"] if r["encoder"] == "sentence-transformers"}
    lines += ["| documents | tokens each | tokens/s | × sentence-transformers | of the limit |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for r in result["medium"]:
        ratio = r["tokens_per_s"] / st[r["doc_tokens"]] if r["doc_tokens"] in st else float("nan")
        frac = r["tokens_per_s"] / limit["limit_tokens_per_s"]
        lines.append(f"| {r['encoder']} | {r['doc_tokens']} | {r['tokens_per_s']:,.0f} | {ratio:.2f} | {frac:.0%} |")
    lines.append("")
    long_modes = [mode for mode in LONG_MODES if result["long"].get(mode)]
    by_mode = {mode: {r["tokens"]: r for r in result["long"][mode]} for mode in long_modes}
    chunks = {r.get("size", r["tokens"]): r for r in result["chunk_mean"]}  # whole pieces: a little over size
    lines += [
        "| one text (tokens) | "
        + " | ".join(f"{mode} tokens/s | of the limit | RSS growth MB" for mode in long_modes)
        + " | teacher chunk-mean tokens/s |",
        "|---:|" + "---:|---:|---:|" * len(long_modes) + "---:|",
    ]
    for n in sorted(by_mode["lam"]):
        cells = []
        for mode in long_modes:
            r = by_mode[mode].get(n)
            cells.append(
                f"{r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / limit['limit_tokens_per_s']:.0%} | "
                f"{r['peak_rss_growth_mb']:.1f}"
                if r
                else "— | — | —"
            )
        c = chunks.get(n)
        lines.append(f"| {n:,} | " + " | ".join(cells) + (f" | {c['tokens_per_s']:,.0f} |" if c else " | — |"))
    lines.append("")
    for r in result.get("long_encode", []):
        lines.append(
            f"`encode` on one {r['tokens']:,}-token string, {r['mode']}: {r['seconds']:.1f} s, "
            f"{r['tokens_per_s']:,.0f} tokens/s."
        )
        lines.append("")
    lines += [targets(result), ""]
    for label, fit in result["fits"].items():
        lines.append(
            f"{label}: seconds = {fit['intercept_s']:.3f} + {fit['seconds_per_token'] * 1e6:.1f} µs × tokens, "
            f"R² = {fit['r2']:.5f}."
        )
        lines.append("")
    return "\n".join(lines)


def targets(result: dict) -> str:
    """The shipped model's long-text speed as a share of the limit, and bf16's as a multiple of fp32
    (long texts: 10K tokens and more, streamed, and `encode` on one string)."""
    limit = result["limit"]["limit_tokens_per_s"]
    fp32 = {r["tokens"]: r["tokens_per_s"] for r in result["long"]["lam"] if r["tokens"] >= 10_000}
    bf16 = {r["tokens"]: r["tokens_per_s"] for r in result["long"].get("lam-bf16", []) if r["tokens"] >= 10_000}
    encode = {r["mode"]: r["tokens_per_s"] for r in result.get("long_encode", [])}
    shares = [fp32[n] / limit for n in sorted(fp32)]
    flops = result["limit"]["flops_per_token"]
    moment = [
        r["tokens_per_s"] * flops / (r["matmul_gflops"] * 1e9)
        for r in sorted(result["long"]["lam"], key=lambda r: r["tokens"])
        if r["tokens"] >= 10_000 and "matmul_gflops" in r
    ]
    text = (
        "Long text (10K tokens and more, streamed): the shipped fp32 model runs at "
        + ", ".join(f"{x:.0%}" for x in shares)
        + " of the fp32 limit"
    )
    if moment:
        text += " (" + ", ".join(f"{x:.0%}" for x in moment) + " of the limit measured right after each text)"
    if "lam" in encode:
        text += f" ({encode['lam'] / limit:.0%} through `encode` on one string)"
    if bf16:
        ratios = [bf16[n] / fp32[n] for n in sorted(bf16) if n in fp32]
        text += "; bf16 runs at " + ", ".join(f"{x:.2f}×" for x in ratios) + " the fp32 speed"
        if "lam-bf16" in encode and "lam" in encode:
            text += f" ({encode['lam-bf16'] / encode['lam']:.2f}× through `encode`)"
    return text + "."


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.5))
    for mode in MODES:
        medium = [r for r in result["medium"] if r["encoder"] == mode]
        long = result["long"].get(mode, [])
        points = [(r["doc_tokens"], r["tokens_per_s"]) for r in medium]
        points += [(r["tokens"], r["tokens_per_s"]) for r in long]
        if points:
            ax.plot(*zip(*points), marker="o", label=mode)
    points = [(r["doc_tokens"], r["tokens_per_s"]) for r in result["medium"] if r["encoder"] == "sentence-transformers"]
    points += [(r["tokens"], r["tokens_per_s"]) for r in result["chunk_mean"]]
    if points:
        ax.plot(*zip(*points), marker="s", linestyle=":", color="black", label="teacher (chunk-mean past 512)")
    ax.axhline(result["limit"]["limit_tokens_per_s"], color="grey", linestyle="--", label="fp32 limit")
    ax.set_xscale("log")
    ax.set_xlabel("tokens per text (256 and 512: 128 documents at batch 32; longer: one text, streamed)")
    ax.set_ylabel("tokens/s")
    m = result["machine"]
    ax.set_title(f"{m['cpu']}, {m['cores']} cores, {m['torch_threads']} threads, {result['date']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quantize", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="sizes 1K, 10K and 100K only, no 1M")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    args = parser.parse_args()
    if args.one_size:
        print(json.dumps(one_size(args.one_size, args.quantize)))
        return
    sizes = args.sizes or ([1_000, 10_000, 100_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000])
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "limit": machine_limit()}
    print(result["limit"], flush=True)
    models = encoders()
    result["short"] = short_sentences(models)
    result["medium"] = medium_documents(models)
    del models
    result["long_encode"] = long_text_encode()
    result["long"] = {}
    for mode in LONG_MODES:
        extra = ("--quantize", MODES[mode]["quantize"]) if "quantize" in MODES[mode] else ()
        result["long"][mode] = [in_fresh_process(__file__, "--one-size", n, *extra) for n in sizes]
    try:
        result["chunk_mean"] = chunk_mean(sizes)
    except ImportError:
        result["chunk_mean"] = []
    result["limit"] = best_limit(result)
    result["fits"] = {mode: linear_fit(rows) for mode, rows in result["long"].items()}
    if result["chunk_mean"]:
        result["fits"]["teacher chunk-mean"] = linear_fit(result["chunk_mean"])
    write_results("core", result, markdown(result))
    plot(result, RESULTS / "core.png")


if __name__ == "__main__":
    main()

"""Where the time goes: torch.profiler over LAM's per-segment forward (fp32 and int8).

    python benchmarks/profile_segment.py     # about 1 minute here

Runs 40 full 256-token segments of one long text (batch 1, as streaming does) and writes the
operators that take the most CPU time to benchmarks/results/profile.md (and .json).
"""

from __future__ import annotations

import torch
from bench_core import machine, write_results
from torch.profiler import ProfilerActivity, profile

from lam import LAM

SEGMENTS = 40


def top_ops(quantize: str | None, rows: int = 12) -> list[dict]:
    lam = LAM(quantize=quantize)
    W = lam.config.segment_len
    ids = torch.randint(1000, 20000, (1, W))
    mask = torch.ones(1, W, dtype=torch.bool)
    with torch.inference_mode():
        for _ in range(5):
            lam.model.forward_segment(ids, mask, None, False)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(SEGMENTS):
                lam.model.forward_segment(ids, mask, None, False)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "self_ms_per_segment": e.self_cpu_time_total / 1e3 / SEGMENTS,
            "share": e.self_cpu_time_total / total,
        }
        for e in events[:rows]
    ]


def main() -> None:
    result = {"machine": machine(), "segments": SEGMENTS, "fp32": top_ops(None), "int8": top_ops("int8")}
    lines = [
        f"Per-segment forward (batch 1, 256 tokens), {result['machine']['cpu']}, "
        f"{result['machine']['torch_threads']} threads; self CPU time per segment.",
        "",
    ]
    for mode in ("fp32", "int8"):
        total = sum(r["self_ms_per_segment"] for r in result[mode])
        lines += [f"| {mode} operator | ms / segment | share |", "|---|---:|---:|"]
        lines += [f"| `{r['op']}` | {r['self_ms_per_segment']:.2f} | {r['share']:.0%} |" for r in result[mode]]
        lines += ["", f"({total:.1f} ms per segment in the operators listed.)", ""]
    write_results("profile", result, "\n".join(lines))


if __name__ == "__main__":
    main()

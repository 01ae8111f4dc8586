"""What the memory costs: one 256-token segment with the memory read and written, against without.

    python benchmarks/bench_memory.py --label this-commit       # about 2 minutes here
    PYTHONPATH=/path/to/older/checkout python benchmarks/bench_memory.py --label older

The bundled weights never read their memory, so inference skips it; a trained memory (lam-v1)
is read and written on every segment of a long text. This opens the read gates of the bundled
model (λ = 0.05: timing does not depend on their value) and times, at batch 1 (streaming) and
batch 8 (indexing, training):

* a full segment through the 6 layers with the memory off, and with it read and written;
* one layer's memory write and read alone (the chunked delta rule, the fast and slow states);
* one training step (two segments, forward and backward into the memory's parameters).

Medians of repeated runs. Each ``--label`` is kept in benchmarks/results/memory.json beside the
others, so the same script run on two checkouts (``PYTHONPATH``) compares two kernels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from bench_core import RESULTS, machine, write_results

import lam as lam_package
from lam import LAM
from lam.evaluation.runner import _git_commit  # the checkout lam was imported from


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def reading_model() -> LAM:
    lam = LAM()
    with torch.no_grad():
        for layer in lam.model.layers:
            layer.attention.memory.read_gate.fill_(0.05)
    assert lam.model.memory_is_read()
    return lam


def measure(model: torch.nn.Module, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    W = model.config.segment_len
    ids = torch.randint(1000, 20000, (batch, W))
    mask = torch.ones(batch, W, dtype=torch.bool)
    out: dict[str, float] = {}
    with torch.inference_mode():
        _, state = model.forward_segment(ids, mask, None, True)
        out["segment_memory_off_ms"] = median_ms(lambda: model.forward_segment(ids, mask, None, False), repeats)
        out["segment_memory_on_ms"] = median_ms(lambda: model.forward_segment(ids, mask, state, True), repeats)
        attention = model.layers[0].attention
        x = model.embeddings(ids)
        H, D = attention.num_heads, attention.head_dim
        q, k, v = (proj(x).view(batch, W, H, D) for proj in (attention.query, attention.key, attention.value))
        out["layer_write_ms"] = median_ms(lambda: attention.memory.write(x, k, v, mask, state[0]), repeats)
        out["layer_read_ms"] = median_ms(lambda: attention.memory.read(q, state[0]), repeats)
    out["memory_share_of_segment"] = 1 - out["segment_memory_off_ms"] / out["segment_memory_on_ms"]
    out["tokens_per_s_memory_on"] = batch * W / out["segment_memory_on_ms"] * 1e3
    return out


def training_step_ms(batch: int, repeats: int) -> float:
    """Forward two segments (the first writes, the second reads) and backpropagate into the memory."""
    torch.manual_seed(0)
    model = reading_model().model.train()
    for name, p in model.named_parameters():
        p.requires_grad_(".memory." in name)
    W = model.config.segment_len
    ids = [torch.randint(1000, 20000, (batch, W)) for _ in range(2)]
    mask = torch.ones(batch, W, dtype=torch.bool)

    def step() -> None:
        first, state = model.forward_segment(ids[0], mask, None, True)
        second, _ = model.forward_segment(ids[1], mask, state, False)
        (first.mean() + second.square().mean()).backward()
        model.zero_grad(set_to_none=True)

    return median_ms(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="current", help="the name this run is kept under")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    model = reading_model().model
    run = {
        "code": (_git_commit() or "unknown")[:7],
        "lam_from": str(Path(lam_package.__file__).resolve().parent),
        "machine": machine(),
        "batch_1": measure(model, 1, args.repeats),
        "batch_8": measure(model, 8, max(3, args.repeats // 3)),
        "train_step_batch_8_ms": training_step_ms(8, max(3, args.repeats // 5)),
    }
    path = RESULTS / "memory.json"
    result = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    result["runs"][args.label] = run

    rows = [
        ("segment, memory off (ms)", "segment_memory_off_ms", "{:.1f}"),
        ("segment, memory read + written (ms)", "segment_memory_on_ms", "{:.1f}"),
        ("memory's share of the segment", "memory_share_of_segment", "{:.0%}"),
        ("one layer's write (ms)", "layer_write_ms", "{:.2f}"),
        ("one layer's read (ms)", "layer_read_ms", "{:.2f}"),
        ("tokens/s, memory on", "tokens_per_s_memory_on", "{:,.0f}"),
    ]
    labels = list(result["runs"])
    lines = [
        "# The memory's cost per 256-token segment (`benchmarks/bench_memory.py`)",
        "",
        "| | batch | " + " | ".join(f"{label} (`{result['runs'][label]['code']}`)" for label in labels) + " |",
        "|---|---:|" + "---:|" * len(labels),
    ]
    for batch in ("batch_1", "batch_8"):
        for title, key, fmt in rows:
            cells = " | ".join(fmt.format(result["runs"][label][batch][key]) for label in labels)
            lines.append(f"| {title} | {batch[6:]} | {cells} |")
    cells = " | ".join(f"{result['runs'][label]['train_step_batch_8_ms']:.0f}" for label in labels)
    lines.append(f"| training step, 2 segments (ms) | 8 | {cells} |")
    lines += ["", f"Machine: {run['machine']['cpu']}, {run['machine']['torch_threads']} torch threads."]
    write_results("memory", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

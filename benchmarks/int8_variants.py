"""Which Linears can be int8 without costing STS: the selection behind ``LAM(quantize="int8")``.

    python benchmarks/int8_variants.py      # about 5 minutes here

For each set of quantised Linears: cosine Spearman ×100 on STS-B train (the selection split),
dev and test, and sentences/s on 1,024 STS-B train sentences (batch 32). The rule, applied to
train only: quantise the largest set whose train loss against float32 is at most 0.1 points.
Writes benchmarks/results/int8-variants.{json,md}.
"""

from __future__ import annotations

import time

from bench_core import machine, write_results

from lam import LAM
from lam.evaluation.datasets import STSSet, _read_pairs, load_sts
from lam.evaluation.metrics import spearman
from lam.quantization import quantize_model

ATTENTION = ("query", "key", "value", "output")
VARIANTS = {
    "float32": None,
    "attention (query, key, value, output)": ATTENTION,
    "attention + ffn_in": (*ATTENTION, "ffn_in"),
    "attention + ffn_out": (*ATTENTION, "ffn_out"),
    "ffn_in + ffn_out": ("ffn_in", "ffn_out"),
    "all six": (*ATTENTION, "ffn_in", "ffn_out"),
}
MAX_TRAIN_LOSS = 0.1


def score(lam: LAM, sts: STSSet) -> float:
    a = lam.encode(sts.sentences1, batch_size=32)
    b = lam.encode(sts.sentences2, batch_size=32)
    return 100 * spearman((a * b).sum(1), sts.scores)


def main() -> None:
    splits = {"train": _read_pairs(["stsb/train.csv"], "stsb-train"), "dev": load_sts("stsb-dev")}
    splits["test"] = load_sts("stsb-test")
    timing = splits["train"].sentences1[:1024]
    rows = []
    for label, names in VARIANTS.items():
        lam = LAM()
        if names is not None:
            quantize_model(lam.model, "int8", names)
        lam.encode(timing[:64])
        t = time.perf_counter()
        lam.encode(timing, batch_size=32)
        row = {"variant": label, "linears": names, "sentences_per_s": len(timing) / (time.perf_counter() - t)}
        row.update({name: score(lam, sts) for name, sts in splits.items()})
        rows.append(row)
        print(row, flush=True)
    base = rows[0]
    eligible = [r for r in rows[1:] if base["train"] - r["train"] <= MAX_TRAIN_LOSS]
    chosen = max(eligible, key=lambda r: len(r["linears"]))["variant"] if eligible else None
    lines = [
        f"int8 variants — {machine()['cpu']}, {machine()['torch_threads']} threads. Chosen on train "
        f"(loss ≤ {MAX_TRAIN_LOSS}): **{chosen}**.",
        "",
        "| quantised Linears | STS-B train | dev | test | test loss | sentences/s | × float32 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['train']:.2f} | {r['dev']:.2f} | {r['test']:.2f} | "
            f"{base['test'] - r['test']:+.2f} | {r['sentences_per_s']:.0f} | "
            f"{r['sentences_per_s'] / base['sentences_per_s']:.2f} |"
        )
    write_results("int8-variants", {"machine": machine(), "rows": rows, "chosen": chosen}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

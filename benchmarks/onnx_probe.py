"""Does ONNX Runtime run LAM's one-segment forward faster than torch? (a probe for issue #6)

    pip install onnxruntime onnx            # not a LAM dependency yet
    python benchmarks/onnx_probe.py         # about 1 minute here

A text of at most W − 2 tokens is one segment, and one segment never reads the memory, so its
embedding is the plain transformer forward whatever the weights. This exports that forward
(mean pooling included) with ``torch.onnx.export``, runs the STS-B test sentences through
ONNX Runtime (all graph optimisations, 2 intra-op threads) and through ``LAM.encode`` with
the same batching, checks they agree, and writes benchmarks/results/onnx-probe.{json,md}.
It is not wired into ``encode`` yet.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_core import DATA, machine, write_results

from lam import LAM


class OneSegment(torch.nn.Module):
    """ids, mask ``[B, T]`` → mean hidden state ``[B, D]`` of one segment (no memory)."""

    def __init__(self, lam: LAM) -> None:
        super().__init__()
        self.model = lam.model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.model.forward_segment(ids, mask, None, False)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)


def main() -> None:
    import onnxruntime as ort

    lam = LAM()
    with open(DATA / "stsb" / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
    assert max(lam.count_tokens(s) for s in sentences) <= lam.segmenter.body_len  # one segment each

    path = Path(tempfile.mkdtemp()) / "segment.onnx"
    example = (torch.randint(1000, 2000, (2, 16)), torch.ones(2, 16, dtype=torch.bool))
    axes = {"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}, "mean": {0: "batch"}}
    torch.onnx.export(
        OneSegment(lam).eval(), example, str(path), input_names=["ids", "mask"], output_names=["mean"],
        dynamic_axes=axes, opset_version=17, dynamo=False,
    )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def ort_encode(texts: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # the same batches as LAM.encode
        out = np.zeros((len(texts), lam.config.hidden_size), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = lam.segmenter.frame(lam.segmenter.body_ids_batch([texts[i] for i in idx]), torch.device("cpu"))
            mean = session.run(None, {"ids": ids.numpy(), "mask": mask.numpy()})[0]
            out[idx] = mean / np.linalg.norm(mean, axis=1, keepdims=True)
        return out

    result = {"machine": machine(), "onnxruntime": ort.__version__, "sentences": len(sentences), "rows": []}
    for batch_size in (32, 128):
        reference, candidate = lam.encode(sentences, batch_size=batch_size), ort_encode(sentences, batch_size)
        agreement = float((reference * candidate).sum(1).min())
        for name, run in (("torch (LAM.encode)", lam.encode), ("onnxruntime", ort_encode)):
            run(sentences[:64], batch_size=batch_size)
            best = min(_seconds(run, sentences, batch_size) for _ in range(2))
            row = {"backend": name, "batch_size": batch_size, "sentences_per_s": len(sentences) / best}
            row["min_cosine_to_torch"] = agreement
            result["rows"].append(row)
            print(row, flush=True)
    lines = [
        f"ONNX Runtime {result['onnxruntime']} vs torch on the {len(sentences):,} STS-B test sentences, "
        f"{result['machine']['cpu']}, {result['machine']['torch_threads']} threads.",
        "",
        "| backend | batch | sentences/s | min cosine to torch |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['backend']} | {r['batch_size']} | {r['sentences_per_s']:.0f} | {r['min_cosine_to_torch']:.7f} |"
        for r in result["rows"]
    ]
    write_results("onnx-probe", result, "\n".join(lines) + "\n")


def _seconds(run, texts: list[str], batch_size: int) -> float:
    t = time.perf_counter()
    run(texts, batch_size=batch_size)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()

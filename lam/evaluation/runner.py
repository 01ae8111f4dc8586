"""Run suites × encoders in one process, on the same data, and collect the scores."""

from __future__ import annotations

import copy
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lam.evaluation.datasets import STS_SETS, RetrievalSplit, load_fidelity_texts, load_leval, load_qmsum, load_sts
from lam.evaluation.encoders import (
    BM25,
    DenseEncoder,
    LAMEncoder,
    LAMSearch,
    Retriever,
    TeacherChunkMean,
    TeacherEncoder,
    load_teacher,
)
from lam.evaluation.metrics import ndcg_at_k, spearman
from lam.evaluation.synthetic import EVAL_SEED, LENGTHS, N_DOCS, synthetic_splits

SUITES = ("sts", "fidelity", "longembed", "qmsum", "genres")
ENCODERS = ("lam", "lam-memory-off", "teacher", "teacher-chunk-mean", "bm25", "lam-search")
ABLATIONS = ("lam-fast-only", "lam-slow-only")  # memory ablations: only one state is read
QUANTIZED = ("lam-int8", "lam-bf16")  # the model with int8 or bf16 Linears (lam.quantization)


def make_encoder(
    name: str,
    model_path: str | None = None,
    progress: bool = False,
    device: str | None = None,
    fusion_weights=None,
) -> Retriever:
    """The encoder called ``name``; LAM's run on ``device`` (the baselines on CPU).

    ``fusion_weights`` (a :class:`lam.retrieval.FusionWeights`) is for ``lam-search`` only;
    ``None`` keeps the library's defaults, the ones tuned for the bundled weights.
    """
    if name == "lam":
        return LAMEncoder(model_path, show_progress=progress, device=device)
    if name == "lam-memory-off":
        return LAMEncoder(model_path, reads="none", show_progress=progress, device=device)
    if name in ABLATIONS:
        return LAMEncoder(model_path, reads=name.split("-")[1], show_progress=progress, device=device)
    if name in QUANTIZED:
        return LAMEncoder(model_path, quantize=name.split("-")[1], show_progress=progress, device=device)
    if name == "teacher":
        return TeacherEncoder()
    if name == "teacher-chunk-mean":
        return TeacherChunkMean()
    if name == "bm25":
        return BM25()
    if name == "lam-search":
        return LAMSearch(model_path, weights=fusion_weights, show_progress=progress, device=device)
    raise ValueError(f"unknown encoder {name!r}; choose from {ENCODERS + ABLATIONS + QUANTIZED}")


def score_sts(encoder: DenseEncoder, sts_set) -> float:
    """Cosine Spearman ×100, as MTEB's STS main score."""
    a = encoder.embed(sts_set.sentences1, "sentence")
    b = encoder.embed(sts_set.sentences2, "sentence")
    return 100 * spearman((a * b).sum(1), sts_set.scores)


def score_retrieval(retriever: Retriever, split: RetrievalSplit) -> dict[str, float]:
    doc_ids, qids = list(split.corpus), list(split.queries)
    scores = retriever.score([split.queries[q] for q in qids], [split.corpus[d] for d in doc_ids])
    relevant = [split.qrels[q] for q in qids]
    out = {f"ndcg_at_{k}": 100 * ndcg_at_k(scores, doc_ids, relevant, k) for k in (1, 10)}
    return {**out, "queries": len(qids)}


class FullAttentionTeacher:
    """The teacher with its full 512-token attention (sentence-transformers, ``max_seq_length``
    512): the reference for the 512-token fidelity. Embeds each text set once."""

    def __init__(self) -> None:
        self._model = None
        self._texts: list[str] | None = None
        self._embeddings: np.ndarray | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embeddings is None or texts != self._texts:
            if self._model is None:
                self._model, _ = load_teacher()
                self._model.max_seq_length = 512
            self._texts = list(texts)
            self._embeddings = self._model.encode(texts, batch_size=16, normalize_embeddings=True)
        return self._embeddings


def score_fidelity(encoder: DenseEncoder, texts: list[str], teacher: FullAttentionTeacher) -> dict[str, float]:
    """Mean (and 5th-percentile) cosine between the encoder and the full-attention teacher on
    512-token texts."""
    ours = encoder.embed(texts, "document")
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    cos = (ours * teacher.embed(texts)).sum(1)
    return {"mean_cosine": float(cos.mean()), "p5_cosine": float(np.percentile(cos, 5)), "texts": len(texts)}


def summarize_genres(per_split: dict[str, dict]) -> dict:
    """Splits ``"<genre>/<variant>"`` → each genre's nDCG@10 (the mean of its query variants) and
    the mean over genres, so every kind of document counts once whatever its number of queries."""
    by_genre: dict[str, list[float]] = {}
    for key, scores in per_split.items():
        by_genre.setdefault(key.split("/")[0], []).append(scores["ndcg_at_10"])
    per_genre = {genre: float(np.mean(values)) for genre, values in by_genre.items()}
    return {"per_split": per_split, "per_genre": per_genre, "mean_ndcg_at_10": float(np.mean(list(per_genre.values())))}


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        return subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _machine() -> dict:
    import torch

    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _is_lam_without_memory(record: dict, info: dict) -> bool:
    """Whether ``lam`` was already scored in ``record`` with these weights and no memory."""
    lam = record["encoders"].get("lam")
    return lam is not None and not lam["memory"] and lam["weights_sha256"] == info["weights_sha256"]


def run_evaluation(
    suites: tuple[str, ...] = SUITES,
    encoders: tuple[str, ...] = ENCODERS,
    model_path: str | None = None,
    lengths: tuple[int, ...] = LENGTHS,
    n_docs: int = N_DOCS,
    seed: int = EVAL_SEED,
    sts_sets: tuple[str, ...] = tuple(STS_SETS),
    progress: bool = True,
    device: str | None = None,
    fusion_weights=None,
) -> dict:
    """Score every encoder on every suite; returns the run record (see ``report.write_report``)."""
    unknown = set(suites) - set(SUITES)
    if unknown:
        raise ValueError(f"unknown suites {sorted(unknown)}; choose from {SUITES}")
    started = time.time()
    tasks: list[tuple[str, str, object]] = []  # (suite, key, data)
    if "sts" in suites:
        tasks += [("sts", name, load_sts(name)) for name in sts_sets]
    if "fidelity" in suites:
        tasks.append(("fidelity", "512", load_fidelity_texts()))
    if "longembed" in suites:
        for task in ("passkey", "needle"):
            tasks += [(task, str(s.info["length"]), s) for s in synthetic_splits(task, lengths, seed, n_docs)]
    if "qmsum" in suites:
        tasks += [("qmsum", variant, load_qmsum(variant)) for variant in ("query", "answer")]
    if "genres" in suites:
        tasks += [("genres", f"meetings/{variant}", load_qmsum(variant)) for variant in ("query", "answer")]
        for variant in ("question", "reference"):  # one pooled corpus: consecutive, embedded once
            tasks += [("genres", f"{split.info['genre']}/{variant}", split) for split in load_leval(variant)]

    record = {
        "run": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "git_commit": _git_commit(),
            "machine": _machine(),
            "suites": list(suites),
            "lengths": list(lengths),
            "n_docs": n_docs,
            "seed": seed,
        },
        "encoders": {},
        "results": {},
        "seconds": {},
    }
    full_teacher = FullAttentionTeacher()
    for enc_name in encoders:
        encoder = make_encoder(enc_name, model_path, device=device, fusion_weights=fusion_weights)
        record["encoders"][enc_name] = encoder.info
        if enc_name == "lam-memory-off" and _is_lam_without_memory(record, encoder.info):
            # the model has no memory to turn off: its scores are lam's, not measured twice
            record["encoders"][enc_name] = {**encoder.info, "scores_of": "lam"}
            record["results"][enc_name] = copy.deepcopy(record["results"]["lam"])
            record["seconds"][enc_name] = {}
            continue
        results: dict = {}
        seconds: dict = {}
        for suite, key, data in tqdm(tasks, desc=enc_name, disable=not progress, unit="set"):
            if suite in ("sts", "fidelity") and not isinstance(encoder, DenseEncoder):
                continue  # BM25 does not embed sentences
            t = time.perf_counter()
            if suite == "fidelity":
                results["fidelity"] = score_fidelity(encoder, data, full_teacher)
            elif suite == "sts":
                results.setdefault("sts", {})[key] = score_sts(encoder, data)
            else:
                results.setdefault(suite, {})[key] = score_retrieval(encoder, data)
            seconds[suite] = seconds.get(suite, 0.0) + time.perf_counter() - t
        if "genres" in results:
            results["genres"] = summarize_genres(results["genres"])
        for task in ("passkey", "needle"):
            if task in results:
                per_length = results[task]
                # the LongEmbed mean is over its lengths; extra (128K, 1M) lengths are reported beside it
                standard = [v["ndcg_at_1"] for k, v in per_length.items() if int(k) in LENGTHS]
                results[task] = {
                    "per_length": per_length,
                    "mean_ndcg_at_1": float(np.mean(standard or [v["ndcg_at_1"] for v in per_length.values()])),
                }
        record["results"][enc_name] = results
        record["seconds"][enc_name] = seconds
    record["run"]["seconds"] = time.time() - started
    return record

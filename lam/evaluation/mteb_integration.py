"""LAM inside the ``mteb`` package (2.x, the ``mteb`` extra), fully offline.

* :class:`LAMMtebEncoder` — the dense encoder protocol: ``mteb.evaluate`` embeds queries and
  documents with LAM and scores retrieval by cosine similarity. It deliberately has no
  ``index``/``search`` methods, so mteb never routes retrieval around the embeddings; the
  index/search engine gets its own, separate object.
* :class:`LAMMtebSearch` — mteb's ``SearchProtocol`` over LAM's index/search engine
  (:class:`lam.retrieval.Index`: passages, document vectors and BM25, fused). mteb hands it the
  corpus and the queries and scores its rankings; it is a different system from the encoder
  and is reported under its own name (``…-search``).
* :func:`stsb_test_task`, :func:`passkey_task`, :func:`needle_task` — mteb tasks whose data
  come from the same loaders ``lam eval`` uses (../shared/data and the seeded generators), so
  the two harnesses can be checked against each other.

    import mteb
    from lam.evaluation.mteb_integration import LAMMtebEncoder, stsb_test_task
    result = mteb.evaluate(LAMMtebEncoder(), tasks=[stsb_test_task()], cache=None)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction

from lam.evaluation.datasets import load_sts
from lam.evaluation.synthetic import EVAL_SEED, LENGTHS, N_DOCS, synthetic_splits


class LAMMtebEncoder(AbsEncoder):
    """A :class:`lam.LAM` speaking mteb's encoder protocol."""

    def __init__(self, model: Any = None, batch_size: int = 32, name: str | None = None) -> None:
        from lam import LAM

        self.model = model if isinstance(model, LAM) else LAM(model)
        self.batch_size = batch_size
        config = self.model.config
        sha = self.model.weights_sha256
        revision = sha[:12] if sha is not None else "in-memory"
        n_params = sum(p.numel() for p in self.model.model.parameters())
        self.mteb_model_meta = ModelMeta(
            loader=None,
            name=name or f"lam/{config.name}",
            revision=revision,
            release_date=None,
            languages=["eng-Latn"],
            n_parameters=n_params,
            memory_usage_mb=round(n_params * 4 / 2**20),
            max_tokens=float("inf"),  # no length limit: texts are streamed segment by segment
            embed_dim=config.hidden_size,
            license="apache-2.0",
            open_weights=True,
            public_training_code=None,
            public_training_data=None,
            framework=["PyTorch", "safetensors"],
            similarity_fn_name=ScoringFunction.COSINE,
            use_instructions=False,
            training_datasets=set(),
            adapted_from="sentence-transformers/all-MiniLM-L6-v2",
            reference=None,
            citation=None,
        )

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs) -> np.ndarray:
        texts = [t for batch in inputs for t in batch["text"]]
        kind = getattr(prompt_type, "value", prompt_type)
        encode = {"query": self.model.encode_query, "document": self.model.encode_document}.get(kind, self.model.encode)
        return encode(texts, batch_size=kwargs.get("batch_size") or self.batch_size, show_progress_bar=False)


class LAMMtebSearch:
    """LAM's index/search engine as an mteb ``SearchProtocol`` (``index`` then ``search``)."""

    def __init__(self, model: Any = None, weights: Any = None) -> None:
        encoder = LAMMtebEncoder(model)
        self.model = encoder.model
        self.weights = weights
        meta = encoder.mteb_model_meta
        self.mteb_model_meta = meta.model_copy(update={"name": meta.name + "-search"})
        self._index = None

    def index(self, corpus, *, task_metadata, hf_split, hf_subset, encode_kwargs, num_proc=None, **kwargs) -> None:
        from lam.retrieval import DEFAULT_WEIGHTS, Index

        self._index = Index(":memory:", self.model, weights=self.weights or DEFAULT_WEIGHTS)
        documents = []
        for row in corpus:
            text = " ".join(t for t in (row.get("title") or "", row.get("text") or "") if t).strip()
            if text:  # an empty document cannot match anything; it is left out of the index
                documents.append((str(row["id"]), text))
        self._index.index_many(documents, show_progress_bar=False)

    def search(
        self,
        queries,
        *,
        task_metadata,
        hf_split,
        hf_subset,
        top_k: int,
        encode_kwargs,
        top_ranked=None,
        num_proc=None,
        **kwargs,
    ) -> dict[str, dict[str, float]]:
        if self._index is None:
            raise RuntimeError("index() must be called before search()")
        rows = [(str(r["id"]), r["text"]) for r in queries]
        asked = [(qid, text) for qid, text in rows if isinstance(text, str) and text.strip()]
        results: dict[str, dict[str, float]] = {qid: {} for qid, _ in rows}
        vectors = self._index.query_vectors([text for _, text in asked])
        for (qid, text), vector in zip(asked, vectors):
            ids, scores = self._index.score_all(text, vector)
            fused = dict(zip(ids, scores["fused"].tolist()))
            if top_ranked is not None:  # reranking: only the given candidates
                fused = {d: fused[d] for d in top_ranked.get(qid, []) if d in fused}
            best = sorted(fused.items(), key=lambda kv: -kv[1])[:top_k]
            results[qid] = dict(best)
        return results


def _metadata(name: str, task_type: str, main_score: str, splits: list[str], description: str) -> TaskMetadata:
    return TaskMetadata(
        name=name,
        description=description,
        reference=None,
        dataset={"path": f"lam-local/{name}", "revision": "local"},
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=splits,
        eval_langs=["eng-Latn"],
        main_score=main_score,
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        dialect=None,
        sample_creation=None,
        bibtex_citation="",
    )


def stsb_test_task():
    """STS-B test from ../shared/data, as an mteb STS task (cosine Spearman)."""
    from datasets import Dataset

    class LocalSTSBenchmark(AbsTaskSTS):
        metadata = _metadata(
            "LAMLocalSTSBenchmark",
            "STS",
            "cosine_spearman",
            ["test"],
            "STS-B test (1,379 pairs) read from shared/data.",
        )
        min_score = 0
        max_score = 5

        def load_data(self, num_proc=None, **kwargs) -> None:
            data = load_sts("stsb-test")
            self.dataset = {
                "default": {
                    "test": Dataset.from_dict(
                        {"sentence1": data.sentences1, "sentence2": data.sentences2, "score": data.scores.tolist()}
                    )
                }
            }
            self.data_loaded = True

    return LocalSTSBenchmark()


def _synthetic_task(task: str, lengths, seed: int, n_docs: int):
    splits = {f"test_{s.info['length']}": s for s in synthetic_splits(task, tuple(lengths), seed, n_docs)}

    class LocalSynthetic(AbsTaskRetrieval):
        metadata = _metadata(
            f"LAMLocal{task.capitalize()}Retrieval",
            "Retrieval",
            "ndcg_at_1",
            list(splits),
            f"LongEmbed-style {task} retrieval regenerated by lam.evaluation.synthetic.",
        )

        def load_data(self, num_proc=None, **kwargs) -> None:
            self.corpus, self.queries, self.relevant_docs = {}, {}, {}
            for split, data in splits.items():
                self.corpus[split] = {d: {"text": t, "title": ""} for d, t in data.corpus.items()}
                self.queries[split] = dict(data.queries)
                self.relevant_docs[split] = {q: {d: 1 for d in docs} for q, docs in data.qrels.items()}
            self.data_loaded = True

    return LocalSynthetic()


def passkey_task(lengths=LENGTHS, seed: int = EVAL_SEED, n_docs: int = N_DOCS):
    return _synthetic_task("passkey", lengths, seed, n_docs)


def needle_task(lengths=LENGTHS, seed: int = EVAL_SEED, n_docs: int = N_DOCS):
    return _synthetic_task("needle", lengths, seed, n_docs)

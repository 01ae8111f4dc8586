"""``Index``: exact long-document retrieval over a persistent SQLite index.

Indexing runs documents through the streaming encoder segment by segment: every segment is
a passage (contextualised by the memory, when the model reads one), the document vector pools
them all (equal to ``LAM.encode``), and each passage's text goes to the FTS5 lexical index.
The encoder runs on the index's own thread while this one writes (:mod:`lam.heap` says why).
Searching scores every document by its best passage, its document vector and BM25, fused as
:mod:`lam.retrieval.fusion` describes, and names the passage where the answer is.

Several processes may share one index file (SQLite in WAL mode): each search first checks
SQLite's ``data_version`` and reloads its cached vectors when another connection has committed,
inside one read snapshot; a write waits up to ``timeout`` seconds for another process's write.

Up to ``exact_limit`` documents every passage is scanned (exact). Above it, and when
``usearch`` is installed (``pip install usearch``, the [ann] extra), an HNSW index proposes candidate passages
and documents, which are then scored exactly like the rest.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from lam.config import LAMConfig
from lam.heap import release_free_memory
from lam.model import LAMModel
from lam.retrieval.fusion import DEFAULT_WEIGHTS, SIGNALS, FusionWeights, fuse, standardise
from lam.retrieval.lexical import document_bm25, fts_query, query_sentences, query_words
from lam.retrieval.passages import Passage, cut_passages, file_pieces, text_pieces
from lam.retrieval.store import DEFAULT_TIMEOUT, IndexStore
from lam.retrieval.vectors import DenseView
from lam.runner import pooled_sums, pooled_sums_in_thread, to_embeddings
from lam.tokenization import TextSegmenter, check_unicode


class Encoder(Protocol):
    """What an index needs of its encoder (``lam.LAM`` is one): the model and segmenter to run
    documents through segment by segment, the weights' identity, and query embeddings."""

    model: LAMModel
    segmenter: TextSegmenter
    config: LAMConfig

    @property
    def weights_sha256(self) -> str | None: ...

    def get_sentence_embedding_dimension(self) -> int: ...

    def encode_query(self, sentences: list[str], **kwargs: Any) -> np.ndarray: ...


BRIDGE_CHARS = 200  # lexical rows also hold about this much of the passage before
TRIM_EVERY = 8  # segments between giving freed heap pages back (lam.heap)


@dataclass
class Hit:
    """One ranked document: where the best passage is, and the scores behind the rank."""

    doc_id: str
    score: float
    start: int  # character offsets of the best passage in the document
    end: int
    passage: str
    passage_index: int
    scores: dict[str, float] = field(default_factory=dict)  # the raw signals of lam.retrieval.fusion
    metadata: dict[str, Any] | None = None


def _locked(method):
    """One thread at a time in the index (a server calls it from many); SQLite's errors reach
    callers as :class:`LAMIndexError` naming the file."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock, self.store.errors():
            return method(self, *args, **kwargs)

    return wrapper


def _unit_means(sums: torch.Tensor, counts: torch.Tensor) -> np.ndarray:
    """Pooled sums ``[N, D]`` and weights ``[N]`` → unit-norm vectors (float32 numpy)."""
    return to_embeddings(sums, counts).float().cpu().numpy()


def _check_id(doc_id: Any) -> str:
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise ValueError(f"doc_id must be a non-empty str, got {doc_id!r}")
    return check_unicode(doc_id, "doc_id")


def _check_text(doc_id: str, text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text of {doc_id!r} must be str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"text of {doc_id!r} is empty")
    return check_unicode(text, f"text of {doc_id!r}")


def _check_metadata(doc_id: str, metadata: Any) -> dict[str, Any] | None:
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata of {doc_id!r} must be a dict or None, got {type(metadata).__name__}")
    return None if metadata is None else dict(metadata)


def check_documents(
    documents: Mapping[str, str] | Iterable[tuple[str, str]],
    metadata: Iterable[dict[str, Any] | None] | None = None,
) -> list[tuple[str, str, dict[str, Any] | None]]:
    """``(doc_id, text, metadata)`` of each document, all checked (ids: non-empty str, unique;
    texts: non-empty str; metadata: dict or None) before any is written; raises on the first
    problem. :meth:`Index.index_many` checks with it, and so does a caller that writes in parts."""
    items = list(documents.items()) if isinstance(documents, Mapping) else list(documents)
    metas = [None] * len(items) if metadata is None else list(metadata)
    if len(metas) != len(items):
        raise ValueError(f"{len(metas)} metadata entries for {len(items)} documents")
    seen: set[str] = set()
    checked = []
    for k, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"documents[{k}] must be a (doc_id, text) pair, got {item!r:.80}")
        doc_id = _check_id(item[0])
        if doc_id in seen:
            raise ValueError(f"duplicate doc_id {doc_id!r} in one index_many call")
        seen.add(doc_id)
        checked.append((doc_id, _check_text(doc_id, item[1]), _check_metadata(doc_id, metas[k])))
    return checked


def _bridge(previous: str) -> str:
    """The last words of the previous passage: at most BRIDGE_CHARS, starting at a word."""
    if len(previous) <= BRIDGE_CHARS:
        return previous
    tail = previous[-BRIDGE_CHARS:]
    cut = tail.find(" ")
    return tail[cut:] if cut >= 0 else tail


def document_passages(model: Encoder, text: str) -> tuple[np.ndarray, list[Passage]]:
    """One document's unit vector and its passages, each with its unit vector: what indexing
    the document computes, for a worker elsewhere to compute instead (``lam.distributed``);
    :meth:`Index.import_documents` stores the result."""
    passages: list[Passage] = []
    pending: deque[Passage] = deque()

    def bodies() -> Iterator[list[int]]:
        for body, passage in cut_passages(model.segmenter, text_pieces(text)):
            pending.append(passage)
            yield body

    def on_step(rows: list[int], sums: torch.Tensor, counts: torch.Tensor) -> None:
        for vector in _unit_means(sums, counts):
            passage = pending.popleft()
            passage.vector = vector
            passages.append(passage)

    with torch.inference_mode():
        sums, counts = pooled_sums(model.model, model.segmenter, [bodies()], on_step=on_step)
    return _unit_means(sums, counts)[0], passages


class Index:
    """Documents of any length, searchable by meaning and by words; stored in one SQLite file.

    >>> index = Index("meetings.lam", LAM())          # or LAM().open_index(path)

    ``encoder`` is any :class:`Encoder`; an index keeps only vectors of its encoder's weights.
    >>> index.index("m1", open("meeting1.txt").read())
    >>> index.search("who decided on the budget?", top_k=3)[0].passage
    """

    def __init__(
        self,
        path: str | Path,
        encoder: Encoder,
        *,
        weights: FusionWeights = DEFAULT_WEIGHTS,
        exact_limit: int = 10_000,
        batch_size: int = 16,
        create: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """``create``: None (default) makes a new index where no file exists; True also turns an
        empty (0-byte) file into one; False requires an existing index. Any other file that is
        not a LAM index is refused with :class:`LAMIndexError`.

        ``timeout``: seconds a write waits while another process writes to the same file, then
        :class:`LAMIndexError`. Reads never wait: other processes' writes are seen at the next
        call (the file is SQLite in WAL mode).
        """
        if not isinstance(timeout, int | float) or timeout < 0:
            raise ValueError(f"timeout must be a number of seconds ≥ 0, got {timeout!r}")
        self.encoder = model = encoder
        self.weights = weights
        self.batch_size = batch_size
        # an index takes only its model's vectors: one weights file gives other passages with the
        # memory on than off, and other document vectors under another pooling
        info = {"model": model.config.name, "dim": str(model.config.hidden_size)}
        info["weights_sha256"] = model.weights_sha256 or "unsaved"
        info["memory"] = "on" if model.config.memory else "off"
        info["pooling"] = model.config.pooling
        # the passages are the model's segments: an index cut another way holds other passages
        info["segments"] = f"{model.segmenter.body_len} ids, no sliver"
        self.store = IndexStore(path, info, create=create, timeout=timeout)
        self.path = self.store.path
        self._view = DenseView(self.store, exact_limit)
        self._lock = threading.RLock()
        # the encoder runs on this thread while SQLite writes on the caller's (pooled_sums_in_thread)
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lam-index-encoder")

    # ------------------------------------------------------------------ writing
    def index(self, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        """Index one document (re-indexing an id replaces it)."""
        self.index_many([(doc_id, text)], metadata=None if metadata is None else [metadata])

    def index_file(
        self, doc_id: str, path: str | Path, metadata: dict[str, Any] | None = None, encoding: str = "utf-8"
    ) -> None:
        """Index a text file of any size, read in blocks: memory stays constant whatever its length."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        self.index_stream(doc_id, file_pieces(path, encoding), metadata)

    @_locked
    def index_stream(self, doc_id: str, pieces: Iterable[str], metadata: dict[str, Any] | None = None) -> None:
        """Index one text given in pieces (a file's blocks, stdin), in constant memory; if reading
        the pieces fails, nothing of the document is written."""
        _check_id(doc_id)
        meta = _check_metadata(doc_id, metadata)
        checked = (check_unicode(piece, f"text of {doc_id!r}") for piece in pieces)
        self._write_batch([(doc_id, checked, meta)], None)

    @_locked
    def index_many(
        self,
        documents: Mapping[str, str] | Iterable[tuple[str, str]],
        metadata: Iterable[dict[str, Any] | None] | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
    ) -> int:
        """Index ``{doc_id: text}`` or ``(doc_id, text)`` pairs; returns how many were indexed.

        Everything is checked before anything is written (ids: non-empty str, unique; texts:
        non-empty str). Documents are committed in batches of ``batch_size``: after a crash
        every committed batch is there and nothing of the batch in flight is.
        """
        checked = check_documents(documents, metadata)
        if not checked:
            return 0
        batch_size = self.batch_size if batch_size is None else batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        show = len(checked) > 1 if show_progress_bar is None else show_progress_bar
        with tqdm(total=len(checked), desc="index", unit="doc", disable=not show) as bar:
            for start in range(0, len(checked), batch_size):
                batch = checked[start : start + batch_size]
                self._write_batch([(d, text_pieces(t), m) for d, t, m in batch], bar)
                bar.update(len(batch))
        return len(checked)

    @_locked
    def import_documents(
        self, documents: Iterable[tuple[str, np.ndarray, list[Passage]]], batch_size: int = 256
    ) -> int:
        """Add documents whose vectors were computed elsewhere: ``(doc_id, vector, passages)``
        as :func:`document_passages` returns them (``lam.distributed.import_corpus`` reads
        them from a Ray job's Parquet). Committed ``batch_size`` documents at a time; returns
        how many were added. The vectors must come from this index's model."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        added, batch = 0, []
        for doc in documents:
            batch.append(doc)
            if len(batch) == batch_size:
                self._write_batch(batch, None, self._store_computed)
                added, batch = added + len(batch), []
        if batch:
            self._write_batch(batch, None, self._store_computed)
            added += len(batch)
        return added

    def _store_computed(self, batch: list[tuple[str, np.ndarray, list[Passage]]], bar) -> None:
        dim = self.encoder.get_sentence_embedding_dimension()
        keys, vectors, new_passages, replaced = [], [], [], False
        for doc_id, vector, passages in batch:
            _check_id(doc_id)
            vector = np.asarray(vector, dtype=np.float32)
            if (
                vector.shape != (dim,)
                or not passages
                or any(p.vector is None or p.vector.shape != (dim,) for p in passages)
            ):
                raise ValueError(f"document {doc_id!r}: need a [{dim}] vector and passages with [{dim}] vectors")
            replaced |= self.store.has(doc_id)
            key = self.store.add_document(doc_id, None)
            previous = ""
            for passage in passages:
                new_passages.append((self._add_passage(key, passage, previous, passage.vector), key, passage.vector))
                previous = passage.text
            n_tokens = sum(p.n_tokens for p in passages)
            self.store.finish_document(key, n_tokens, passages[-1].end, len(passages), vector)
            keys.append((key, doc_id))
            vectors.append(vector)
        self._view.added(keys, np.stack(vectors), new_passages, replaced)

    def _add_passage(self, doc_key: int, passage: Passage, previous_text: str, vector: np.ndarray) -> int:
        """Store one passage, its lexical row led by a bridge from the passage before it."""
        bridge = _bridge(previous_text) if passage.ordinal else ""
        return self.store.add_passage(doc_key, passage, bridge, vector)

    def _write_batch(self, batch: list, bar, write=None) -> None:
        """``write(batch, bar)`` (default: encode and store) in one transaction; if it does not
        commit, the in-memory vectors are reloaded from the file."""
        try:
            with self.store.transaction():
                (write or self._encode_batch)(batch, bar)
        except BaseException:
            self._view.invalidate()
            raise

    @torch.inference_mode()
    def _encode_batch(self, batch: list[tuple[str, Iterator[str], dict | None]], bar) -> None:
        """Run documents through the model together, writing passages as they come out."""
        lam = self.encoder
        keys, pending, previous = [], [], []
        n_chars, n_tokens, n_passages = [0] * len(batch), [0] * len(batch), [0] * len(batch)
        replaced = False

        def bodies(k: int, pieces: Iterator[str]) -> Iterator[list[int]]:
            for body, passage in cut_passages(lam.segmenter, pieces):
                pending[k].append(passage)
                yield body

        for doc_id, _, meta in batch:
            replaced |= self.store.has(doc_id)
            keys.append(self.store.add_document(doc_id, meta))
            pending.append(deque())
            previous.append("")
        new_passages: list[tuple[int, int, np.ndarray]] = []
        steps = [0]

        def on_step(rows: list[int], sums: torch.Tensor, counts: torch.Tensor) -> None:
            for row, vector in zip(rows, _unit_means(sums, counts)):
                passage: Passage = pending[row].popleft()
                new_passages.append((self._add_passage(keys[row], passage, previous[row], vector), keys[row], vector))
                previous[row] = passage.text
                n_chars[row] = passage.end
                n_tokens[row] += passage.n_tokens
                n_passages[row] += 1
            steps[0] += 1
            if steps[0] % TRIM_EVERY == 0:
                release_free_memory()  # see lam.heap: else the heap grows with the document
            if bar is not None:
                bar.set_postfix(tokens=int(counts.sum()), refresh=False)

        iters = [bodies(k, pieces) for k, (_, pieces, _) in enumerate(batch)]
        doc_vectors = _unit_means(*pooled_sums_in_thread(lam.model, lam.segmenter, iters, on_step, self._encoder))
        for k, key in enumerate(keys):
            self.store.finish_document(key, n_tokens[k], n_chars[k], n_passages[k], doc_vectors[k])
        self._view.added(
            [(key, doc_id) for key, (doc_id, _, _) in zip(keys, batch)], doc_vectors, new_passages, replaced
        )

    @_locked
    def remove(self, doc_id: str) -> bool:
        """Delete a document; True if it was there."""
        _check_id(doc_id)
        with self.store.transaction():
            removed = self.store.delete(doc_id)
        if removed:
            self._view.invalidate()
        return removed

    @_locked
    def clear(self) -> None:
        """Delete every document (the file and its model binding stay)."""
        with self.store.transaction():
            self.store.clear()
        self._view.invalidate()

    # ------------------------------------------------------------------ searching
    @contextmanager
    def _current(self) -> Iterator[None]:
        """One read snapshot of the file, with the cached vectors brought up to it (another
        process may have written since they were loaded)."""
        with self.store.snapshot():
            self._view.refresh()
            yield

    @_locked
    def search(self, query: str | list[str], top_k: int = 10) -> list[Hit] | list[list[Hit]]:
        """Ranked hits for a query (or a list of hits per query for a list of queries)."""
        single = isinstance(query, str)
        queries = [query] if single else query
        if not isinstance(queries, list | tuple) or not all(isinstance(q, str) for q in queries):
            raise TypeError("query must be a str or a list of str")
        for q in queries:
            if not q.strip():
                raise ValueError("query is empty")
            check_unicode(q, "the query")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        if not queries:
            return []
        vectors = self.query_vectors(list(queries))
        with self._current():  # every query sees the same documents, whoever writes meanwhile
            results = [self._search_one(q, v, top_k) for q, v in zip(queries, vectors)]
        return results[0] if single else results

    def query_vectors(self, queries: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (its embedding ``[D]``, its sentences' embeddings ``[S, D]``), one encode call."""
        parts = [query_sentences(q) for q in queries]
        flat = list(queries) + [s for p in parts for s in p]
        vectors = self.encoder.encode_query(flat, show_progress_bar=False)
        out, at = [], len(queries)
        for q, p in enumerate(parts):
            out.append((vectors[q], vectors[at : at + len(p)]))
            at += len(p)
        return out

    @_locked
    def score_all(self, query: str, vectors: tuple[np.ndarray, np.ndarray]) -> tuple[list[str], dict[str, np.ndarray]]:
        """Every candidate document's raw and fused scores (for evaluation and tuning).

        ``vectors`` comes from :meth:`query_vectors`: the whole query's embedding scores document
        vectors; each sentence is matched to its best passage, densely and lexically, and the
        matches are averaged over the sentences (:mod:`lam.retrieval.fusion`).
        """
        with self._current():
            return self._score_all(query, vectors)

    def _score_all(self, query: str, vectors: tuple[np.ndarray, np.ndarray]):
        view = self._view
        whole, sentences = vectors
        if not view.doc_ids:
            return [], {}
        per_sentence = [self._lexical(part, view) for part in query_sentences(query)]
        candidates = view.candidates(whole, [hit for hits in per_sentence for hit in hits])
        position = {int(c): i for i, c in enumerate(candidates)}
        passage_max, best_dense = view.passage_scores(sentences, candidates)
        signals = {
            "passage": passage_max,
            "document": view.document_scores(whole, candidates),
            "lexical": np.zeros(len(candidates)),
            "document_lexical": self._document_lexical(query, view, position),
        }
        # lexical: each sentence's best passage BM25 per document, averaged over the sentences;
        # the passage shown for a lexical hit is the one with the most BM25 summed over them
        summed: dict[int, float] = {}
        for hits in per_sentence:
            best = np.zeros(len(candidates))
            for key, score in hits:
                i = position.get(view.doc_of_passage(key))
                if i is not None:
                    best[i] = max(best[i], score)
                    summed[key] = summed.get(key, 0.0) + score
            signals["lexical"] += best / len(per_sentence)
        best_lexical, most = np.full(len(candidates), -1, dtype=np.int64), np.zeros(len(candidates))
        for key, score in summed.items():
            i = position[view.doc_of_passage(key)]
            if score > most[i]:
                best_lexical[i], most[i] = key, score
        ids = [view.doc_ids[c] for c in candidates]
        fused = fuse(signals, self.weights)
        return ids, {"fused": fused, **signals, "best_dense": best_dense, "best_lexical": best_lexical}

    def _lexical(self, query: str, view: DenseView) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None or not view.doc_ids:
            return []
        return self.store.lexical(match, limit=max(1000, 4 * len(view.doc_ids)))

    def _document_lexical(self, query: str, view: DenseView, position: dict[int, int]) -> np.ndarray:
        """Whole-document BM25 of the candidates (``position``: document row → candidate)."""
        out = np.zeros(len(position))
        totals = view.totals()  # BM25's N and mean length, cached: a scan of every document row
        n_docs = totals["documents"]
        counts = (self.store.term_counts(t) for t in self.store.terms(" ".join(query_words(query))))
        scores = document_bm25(counts, n_docs, totals["words"] / max(n_docs, 1))
        for key, score in scores.items():
            i = position.get(view.row_of_document(key))
            if i is not None:
                out[i] = score
        return out

    def _search_one(self, query: str, vector: np.ndarray, top_k: int) -> list[Hit]:
        ids, s = self.score_all(query, vector)
        if not ids:
            return []
        order = np.argsort(-s["fused"], kind="stable")[:top_k]
        hits = []
        z_lexical = standardise(s["lexical"]) * self.weights.lexical
        z_passage = standardise(s["passage"]) * self.weights.passage
        for i in order:
            # the best passage: the lexical one (with its bridge, where the words may be) when its
            # BM25 stands out more than the dense passage's cosine does
            lexical = s["best_lexical"][i] >= 0 and z_lexical[i] > z_passage[i]
            key = int(s["best_lexical"][i] if lexical else s["best_dense"][i])
            p = self.store.passage(key, with_bridge=lexical)
            hits.append(
                Hit(
                    doc_id=ids[i],
                    score=float(s["fused"][i]),
                    start=p["start"],
                    end=p["end"],
                    passage=p["text"],
                    passage_index=p["ordinal"],
                    scores={k: float(s[k][i]) for k in SIGNALS},
                    metadata=self.store.metadata(ids[i]),
                )
            )
        return hits

    # ------------------------------------------------------------------ introspection
    @_locked
    def __len__(self) -> int:
        return self.store.count()

    @_locked
    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.store.has(doc_id)

    @_locked
    def stats(self) -> dict[str, Any]:
        """Documents, passages, tokens, characters, bytes on disk, bytes per token, search mode."""
        with self._current():
            totals = self.store.totals()
            mode = self._view.mode()
        size = self.store.size_bytes()
        return {
            "path": self.path,
            **totals,
            "bytes": size,
            "bytes_per_token": size / totals["tokens"] if totals["tokens"] else None,
            "search": mode,
            "fusion": self.weights.as_dict(),
            "model": self.store.meta.get("model"),
        }

    @_locked
    def close(self) -> None:
        self._encoder.shutdown()
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index(path={self.path!r}, documents={len(self)}, model={self.store.meta.get('model')!r})"

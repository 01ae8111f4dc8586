"""The index's vectors in memory: documents, their passages, exact scans and the optional ANN.

Passages are kept sorted by document, so "the best passage of each document" is one
``maximum.reduceat`` over a matrix product. The arrays are loaded from the store (float16
there, float32 here) and extended in place when documents are added, so a search right after
indexing and a search after reopening the file see exactly the same numbers.
"""

from __future__ import annotations

import numpy as np

from lam.retrieval.store import IndexStore, as_stored

ANN_CANDIDATES = 256  # passages and documents an HNSW search proposes per query


def _usearch():
    try:
        from usearch.index import Index as USearchIndex
    except ImportError:
        return None
    return USearchIndex


class DenseView:
    """Vectors of the stored documents and passages, and the scans over them."""

    def __init__(self, store: IndexStore, exact_limit: int) -> None:
        self.store = store
        self.exact_limit = exact_limit
        self._loaded = False
        self._appended: list = []
        self._totals: dict[str, int] | None = None
        self._version = -1

    # --- keeping in step with the store ---
    def invalidate(self) -> None:
        self._loaded = False
        self._appended = []
        self._totals = None

    def refresh(self) -> None:
        """Forget what is cached if another connection (another process) wrote since it was read.

        Call inside :meth:`IndexStore.snapshot`, so the check and the reads see the same file.
        This connection's own writes leave the version alone: :meth:`added` keeps them in step.
        """
        version = self.store.data_version()
        if version != self._version:
            self.invalidate()
            self._version = version

    def added(self, docs: list[tuple[int, str]], doc_vectors, passages: list[tuple[int, int, np.ndarray]], replaced):
        """Documents just committed (``(key, id)``, vectors) and their passages ``(key, doc key, vector)``."""
        self._totals = None
        if replaced or not self._loaded:
            self.invalidate()
            return
        self._appended.append((docs, doc_vectors, passages))

    def totals(self) -> dict[str, int]:
        """The store's :meth:`~IndexStore.totals`, read once per change rather than per query."""
        if self._totals is None:
            self._totals = self.store.totals()
        return self._totals

    @property
    def doc_ids(self) -> list[str]:
        """Document ids, row order."""
        self._ensure()
        return self._doc_ids

    def _ensure(self) -> None:
        if not self._loaded:
            keys, ids, vectors = self.store.documents()
            self._doc_keys, self._doc_ids, self._doc_vectors = keys, ids, vectors
            self._p_keys, p_docs, self._p_vectors = self.store.passages()
            self._index_rows(p_docs)
            self._loaded = True
        if self._appended:
            self._append()

    def _append(self) -> None:
        doc_keys, doc_ids, doc_vecs, p_keys, p_docs, p_vecs = [], [], [], [], [], []
        for docs, doc_vectors, passages in self._appended:
            doc_keys += [k for k, _ in docs]
            doc_ids += [i for _, i in docs]
            doc_vecs.append(doc_vectors)
            passages = sorted(passages, key=lambda p: (p[1], p[0]))  # by document, then position
            p_keys += [p[0] for p in passages]
            p_docs += [p[1] for p in passages]
            p_vecs += [p[2] for p in passages]
        self._appended = []
        self._doc_keys += doc_keys
        self._doc_ids += doc_ids
        self._doc_vectors = np.concatenate([self._doc_vectors, as_stored(np.concatenate(doc_vecs))])
        self._p_keys = np.concatenate([self._p_keys, np.array(p_keys, dtype=np.int64)])
        self._p_vectors = np.concatenate([self._p_vectors, as_stored(np.stack(p_vecs))])
        all_p_docs = np.concatenate([np.array(self._doc_keys)[self._p_doc], np.array(p_docs, dtype=np.int64)])
        self._index_rows(all_p_docs)

    def _index_rows(self, p_doc_keys: np.ndarray) -> None:
        self._doc_row = {k: i for i, k in enumerate(self._doc_keys)}
        self._p_doc = np.array([self._doc_row[k] for k in p_doc_keys.tolist()], dtype=np.int64)
        self._p_row = {k: i for i, k in enumerate(self._p_keys.tolist())}
        # passages are sorted by document: document r owns rows starts[r] .. starts[r + 1]
        self._starts = np.searchsorted(self._p_doc, np.arange(len(self._doc_keys) + 1))
        self._ann = None

    # --- scans ---
    def mode(self) -> str:
        self._ensure()
        return "ann" if self._use_ann() else "exact"

    def _use_ann(self) -> bool:
        return len(self._doc_ids) > self.exact_limit and _usearch() is not None

    def doc_of_passage(self, key: int) -> int:
        """The document row of a passage key."""
        return int(self._p_doc[self._p_row[key]])

    def row_of_document(self, key: int) -> int:
        """The row of a document key."""
        self._ensure()
        return self._doc_row[key]

    def candidates(self, vector: np.ndarray, lexical: list[tuple[int, float]]) -> np.ndarray:
        """Document rows to score: all of them (exact), or those the ANN and the lexical side propose."""
        self._ensure()
        if not self._use_ann():
            return np.arange(len(self._doc_ids))
        if self._ann is None:
            self._ann = self._build_ann()
        passages, documents = self._ann
        k = min(ANN_CANDIDATES, len(self._p_keys))
        rows = [self._p_doc[passages.search(vector, k).keys.astype(np.int64)]]
        rows.append(documents.search(vector, min(ANN_CANDIDATES, len(self._doc_ids))).keys.astype(np.int64))
        rows.append(np.array([self.doc_of_passage(key) for key, _ in lexical], dtype=np.int64))
        return np.unique(np.concatenate(rows))

    def _build_ann(self):
        USearchIndex = _usearch()
        dim = self._doc_vectors.shape[1]
        passages = USearchIndex(ndim=dim, metric="cos", dtype="f16")
        passages.add(np.arange(len(self._p_keys)), self._p_vectors)
        documents = USearchIndex(ndim=dim, metric="cos", dtype="f16")
        documents.add(np.arange(len(self._doc_ids)), self._doc_vectors)
        return passages, documents

    def passage_scores(self, sentences: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each document row: the mean over query sentences ``[S, D]`` of each one's best cosine
        over the document's passages, and the passage closest to the sentences on average."""
        starts, ends = self._starts[rows], self._starts[rows + 1]
        if len(rows) == len(self._doc_ids):
            p_rows = np.arange(len(self._p_keys))
        else:
            p_rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        scores = self._p_vectors[p_rows] @ np.atleast_2d(sentences).T  # [passages, S]
        local_starts = np.concatenate([[0], np.cumsum(ends - starts)[:-1]])
        matched = np.maximum.reduceat(scores, local_starts, axis=0).mean(1)
        mean = scores.mean(1)
        best = np.maximum.reduceat(mean, local_starts)
        owner = np.repeat(np.arange(len(rows)), ends - starts)
        is_best = np.flatnonzero(mean >= best[owner])
        _, first = np.unique(owner[is_best], return_index=True)
        return matched, self._p_keys[p_rows[is_best[first]]]

    def document_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self._doc_vectors[rows] @ vector

"""The on-disk index: one SQLite database (WAL) holding documents, passages, vectors and FTS5.

Tables::

    meta(key, value)                      schema version, model name and weights, vector dim
    documents(id, doc_id, metadata, n_tokens, n_chars, n_words, n_passages, vector)
    passages(id, doc, ordinal, start, end, bridge, n_tokens, vector)
    lexical(bridge, text)                 FTS5 (porter stemming); rowid = passages.id
    lexical_instances                     fts5vocab 'instance' view of ``lexical`` (stores nothing)

Vectors are unit-norm float16 blobs. A passage's text is stored once, in ``lexical.text``, next
to a *bridge*: the last words of the passage before it, so a sentence cut by a segment boundary
is still whole for passage BM25 (FTS5 scores a row over both columns as one text).
``passages.bridge`` is the bridge's length in characters; passages tile the document, so a
lexical row is the document's characters ``start - bridge .. end``. Document-level term counts
read the ``text`` column only, so every word of a document is counted once.

Every write happens inside one transaction (:meth:`IndexStore.transaction`): a document is
either fully committed or absent, whatever happens to the process.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lam.errors import LAMIndexError
from lam.retrieval.lexical import count_words
from lam.retrieval.passages import Passage

SCHEMA_VERSION = "2"  # 2: the lexical bridge is its own column

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    metadata TEXT,
    n_tokens INTEGER NOT NULL,
    n_chars INTEGER NOT NULL,
    n_words INTEGER NOT NULL,  -- words of its passages as FTS5 splits them: BM25's document length
    n_passages INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    doc INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    bridge INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_doc ON passages (doc, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS lexical USING fts5 (bridge, text, tokenize = 'porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS lexical_instances USING fts5vocab (lexical, 'instance');
"""

# A scratch FTS5 table with the index's tokenizer: what it makes of a query's words are exactly
# the terms the documents were indexed under (stemmed the same way).
_QUERY_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_text USING fts5 (text, tokenize = 'porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5vocab (temp, query_text, 'row');
"""


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float16).tobytes()


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """Vectors exactly as they read back from the store (float16 storage, float32 out)."""
    return np.asarray(vectors, dtype=np.float16).astype(np.float32)


def vectors_from_blobs(blobs: list[bytes], dim: int) -> np.ndarray:
    """Stacked float32 vectors of float16 blobs (``[N, dim]``)."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim).astype(np.float32)


SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_TIMEOUT = 30.0  # seconds a writer waits for another process's write to finish


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def check_index_path(path: Path, create: bool | None = None) -> bool:
    """Whether ``path`` is to become a new index (``create`` as :class:`IndexStore` takes it);
    :class:`LAMIndexError` for a path that must not be opened. Reads at most the file's header."""
    if path.is_dir():
        raise LAMIndexError(f"{path} is a directory, not an index file")
    if not path.exists():
        if create is False:
            raise LAMIndexError(f"no index at {path}")
        if not path.parent.is_dir():
            raise LAMIndexError(f"cannot create {path}: folder {path.parent} does not exist")
        return True
    if not path.is_file():
        raise LAMIndexError(f"{path} is not a regular file, not an index")
    size = path.stat().st_size
    if size == 0:
        if create:
            return True
        raise LAMIndexError(f"{path} is an empty file, not a LAM index (delete it, or pass create=True)")
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise LAMIndexError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if header != SQLITE_HEADER:
        raise LAMIndexError(f"{path} is not a LAM index (not an SQLite database)")
    return False


class IndexStore:
    """SQLite access for :class:`lam.retrieval.Index`; knows tables, not ranking.

    ``create``: None makes a new index only where no file exists; True also takes an empty
    (0-byte) file; False never creates. Any other file that is not a LAM index is refused.
    ``timeout``: seconds a write waits for another process's write before :class:`LAMIndexError`.
    """

    def __init__(
        self,
        path: str | Path,
        model_info: dict[str, str],
        *,
        create: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.path = str(path)
        self.timeout = timeout
        memory = self.path == ":memory:"
        new = memory or check_index_path(Path(self.path), create)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=timeout)
        except sqlite3.Error as exc:
            raise LAMIndexError(f"{self.path} cannot be opened ({exc})") from exc
        try:
            with self.errors():
                # an existing file is read before anything writes: one that is not an index stays as it was
                meta = None if new else self._meta()
                self.db.execute("PRAGMA journal_mode=WAL" if not memory else "PRAGMA journal_mode=MEMORY")
                self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
                self.db.execute("PRAGMA foreign_keys=ON")
                if new:
                    self._create(model_info)
                    meta = self._meta()
                for statement in _statements(_QUERY_SCHEMA):  # temp tables: this connection only
                    self.db.execute(statement)
        except BaseException:
            self.db.close()
            raise
        for key, value in model_info.items():
            if meta.get(key) != value:
                self.db.close()
                raise LAMIndexError(
                    f"{self.path} was built with {key}={meta.get(key)!r}, but the model has {value!r}; "
                    "vectors from different models cannot be searched together (rebuild the index)"
                )
        self.meta = meta
        self.dim = int(meta["dim"])

    def _create(self, model_info: dict[str, str]) -> None:
        """Tables and meta in one transaction: of two processes creating one index, one does it."""
        with self.transaction():
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
                for statement in _statements(_SCHEMA):
                    self.db.execute(statement)
                self.db.executemany(
                    "INSERT INTO meta VALUES (?, ?)", [("schema", SCHEMA_VERSION), *sorted(model_info.items())]
                )

    def _meta(self) -> dict[str, str]:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise LAMIndexError(f"{self.path} is an SQLite database but not a LAM index (no meta table)")
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        if meta.get("schema") != SCHEMA_VERSION:
            raise LAMIndexError(
                f"{self.path}: index schema {meta.get('schema')!r}, "
                f"this LAM reads {SCHEMA_VERSION!r} (rebuild the index)"
            )
        missing = {"documents", "passages", "lexical"} - tables
        if missing or "dim" not in meta or not meta["dim"].isdigit():
            raise LAMIndexError(f"{self.path} is not a complete LAM index (missing {sorted(missing) or 'dim'})")
        return meta

    @contextmanager
    def errors(self) -> Iterator[None]:
        """SQLite's errors as :class:`LAMIndexError` naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            message = str(exc)
            if "locked" in message or "busy" in message:
                raise LAMIndexError(
                    f"{self.path} is locked by another writer; gave up after {self.timeout:g} s "
                    "(raise the timeout, or write from one process at a time)"
                ) from exc
            if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in message or "not a database" in message):
                raise LAMIndexError(f"{self.path} is corrupt ({message}); rebuild it or restore a copy") from exc
            raise LAMIndexError(f"{self.path}: {type(exc).__name__}: {message}") from exc

    def close(self) -> None:
        self.db.close()

    def data_version(self) -> int:
        """A number that changes when another connection (any process) commits a write."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: commit on success, roll back on any exception.

        ``BEGIN IMMEDIATE`` takes the write lock at once, waiting up to ``timeout`` seconds for
        another process's write to finish.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view of the file for several reads (WAL: writers go on meanwhile)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            self.db.execute("SELECT 1 FROM meta LIMIT 1")  # the read (and its snapshot) starts here
            yield
        finally:
            if self.db.in_transaction:
                self.db.execute("COMMIT")

    # --- writes (inside a transaction) ---
    def delete(self, doc_id: str) -> bool:
        row = self.db.execute("SELECT id FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            return False
        self.db.execute("DELETE FROM lexical WHERE rowid IN (SELECT id FROM passages WHERE doc = ?)", row)
        self.db.execute("DELETE FROM passages WHERE doc = ?", row)
        self.db.execute("DELETE FROM documents WHERE id = ?", row)
        return True

    def add_document(self, doc_id: str, metadata: dict[str, Any] | None) -> int:
        """A document row with empty figures (filled by :meth:`finish_document`); returns its key."""
        self.delete(doc_id)  # re-indexing an id replaces it
        cur = self.db.execute(
            "INSERT INTO documents (doc_id, metadata, n_tokens, n_chars, n_words, n_passages, vector) "
            "VALUES (?, ?, 0, 0, 0, 0, ?)",
            (doc_id, None if metadata is None else json.dumps(metadata), b""),
        )
        return int(cur.lastrowid)

    def add_passage(self, doc: int, passage: Passage, bridge: str, vector: np.ndarray) -> int:
        """Store a passage (its vector, and its text after ``bridge`` in the lexical table); returns its key."""
        p = passage
        cur = self.db.execute(
            "INSERT INTO passages (doc, ordinal, start, end, bridge, n_tokens, vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc, p.ordinal, p.start, p.end, len(bridge), p.n_tokens, _blob(vector)),
        )
        self.db.execute("INSERT INTO lexical (rowid, bridge, text) VALUES (?, ?, ?)", (cur.lastrowid, bridge, p.text))
        self.db.execute("UPDATE documents SET n_words = n_words + ? WHERE id = ?", (count_words(p.text), doc))
        return int(cur.lastrowid)

    def finish_document(self, doc: int, n_tokens: int, n_chars: int, n_passages: int, vector) -> None:
        self.db.execute(
            "UPDATE documents SET n_tokens = ?, n_chars = ?, n_passages = ?, vector = ? WHERE id = ?",
            (n_tokens, n_chars, n_passages, _blob(vector), doc),
        )

    def clear(self) -> None:
        for table in ("lexical", "passages", "documents"):
            self.db.execute(f"DELETE FROM {table}")

    # --- reads ---
    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def has(self, doc_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)).fetchone() is not None

    def totals(self) -> dict[str, int]:
        docs, tokens, chars, words = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(n_tokens), 0), COALESCE(SUM(n_chars), 0), COALESCE(SUM(n_words), 0) "
            "FROM documents"
        ).fetchone()
        passages = self.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return {"documents": docs, "passages": passages, "tokens": tokens, "characters": chars, "words": words}

    def documents(self) -> tuple[list[int], list[str], np.ndarray]:
        """(row keys, doc ids, document vectors) in key order."""
        rows = self.db.execute("SELECT id, doc_id, vector FROM documents ORDER BY id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], vectors_from_blobs([r[2] for r in rows], self.dim)

    def passages(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(passage keys, their document keys, passage vectors) in document order."""
        rows = self.db.execute("SELECT id, doc, vector FROM passages ORDER BY doc, ordinal").fetchall()
        keys = np.array([r[0] for r in rows], dtype=np.int64)
        docs = np.array([r[1] for r in rows], dtype=np.int64)
        return keys, docs, vectors_from_blobs([r[2] for r in rows], self.dim)

    def lexical(self, match: str, limit: int) -> list[tuple[int, float]]:
        """(passage key, BM25 score, higher is better) of the best ``limit`` passages for an FTS5 query."""
        rows = self.db.execute(
            "SELECT rowid, bm25(lexical) FROM lexical WHERE lexical MATCH ? ORDER BY bm25(lexical) LIMIT ?",
            (match, limit),
        ).fetchall()
        return [(int(k), -float(s)) for k, s in rows]

    def terms(self, text: str) -> list[str]:
        """The distinct index terms of ``text``: FTS5's own tokenizer and stemmer, as documents got."""
        self.db.execute("DELETE FROM temp.query_text")
        self.db.execute("INSERT INTO temp.query_text (text) VALUES (?)", (text,))
        return [row[0] for row in self.db.execute("SELECT term FROM temp.query_terms")]

    def term_counts(self, term: str) -> list[tuple[int, int, int]]:
        """``(document key, occurrences of term, document words)`` for each document holding the
        index term; bridges are left out, so every word of a document counts once."""
        return self.db.execute(
            "SELECT p.doc, COUNT(*), d.n_words FROM lexical_instances v "
            "JOIN passages p ON p.id = v.doc JOIN documents d ON d.id = p.doc "
            "WHERE v.term = ? AND v.col = 'text' GROUP BY p.doc",
            (term,),
        ).fetchall()

    def passage(self, key: int, with_bridge: bool = False) -> dict[str, Any]:
        """A passage's document, position and text (``with_bridge``: from the start of its bridge)."""
        row = self.db.execute(
            "SELECT d.doc_id, p.ordinal, p.start, p.end, l.bridge, l.text "
            "FROM passages p JOIN documents d ON d.id = p.doc JOIN lexical l ON l.rowid = p.id WHERE p.id = ?",
            (key,),
        ).fetchone()
        if row is None:
            raise LAMIndexError(f"{self.path}: passage {key} is missing (the file changed under this reader)")
        doc_id, ordinal, start, end, bridge, text = row
        if with_bridge:
            text, start = bridge + text, start - len(bridge)
        return {"doc_id": doc_id, "ordinal": ordinal, "start": start, "end": end, "text": text}

    def metadata(self, doc_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT metadata FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    def size_bytes(self) -> int:
        if self.path == ":memory:":
            page_count = self.db.execute("PRAGMA page_count").fetchone()[0]
            return page_count * self.db.execute("PRAGMA page_size").fetchone()[0]
        return sum(p.stat().st_size for p in Path(self.path).parent.glob(Path(self.path).name + "*"))

"""The lexical side of a query: words → an FTS5 MATCH expression, and whole-document BM25.

Documents are indexed in full (FTS5, Porter stemming, ``unicode61`` word splitting); only the
query drops English function words, so BM25 is decided by the words that carry meaning. The
list is NLTK's English stop-word list (its apostrophe forms appear here split at the
apostrophe, as ``\\w+`` splits them).

Two BM25 scores come out of the one FTS5 index: a passage's (FTS5's ``bm25()``, per row) and
a whole document's (:func:`document_bm25`, from the term counts of all its passages) — where
in a document the query's words meet, and how much the document as a whole is about them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable

_WORD = re.compile(r"\w+")
_FTS_WORD = re.compile(r"[^\W_]+")  # FTS5 unicode61's tokens: runs of letters and digits


def count_words(text: str) -> int:
    """How many words FTS5 (``unicode61``) makes of ``text``: a document's length for BM25."""
    return sum(1 for _ in _FTS_WORD.finditer(text))


STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
    her hers herself it its itself they them their theirs themselves what which who whom this that
    these those am is are was were be been being have has had having do does did doing a an the and
    but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn
    doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn
    """.split()
)


def query_words(text: str) -> list[str]:
    """The query's distinct words, lower-cased, stop words removed (all words if every one is a stop word)."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    content = [w for w in words if w not in STOP_WORDS]
    return content or words


def query_pairs(text: str) -> list[str]:
    """Adjacent content words of the query, as two-word phrases ("sky nakamura", "red shed")."""
    words = [w.lower() for w in _WORD.findall(text)]
    pairs = (f"{a} {b}" for a, b in itertools.pairwise(words) if a not in STOP_WORDS and b not in STOP_WORDS)
    return list(dict.fromkeys(pairs))


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression: every query word and every adjacent pair of content words,
    each quoted (no FTS5 syntax leaks in), joined by OR.

    FTS5's BM25 gives each phrase its own IDF, so a pair that is rare as a phrase — a name whose
    first word is common, a technical term — counts more than its two words apart (the idea of
    the sequential dependence model, in its simplest form).
    """
    terms = query_words(text) + query_pairs(text)
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms) or None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def query_sentences(text: str, max_parts: int = 8) -> list[str]:
    """A query cut into sentences, merged into at most ``max_parts`` parts (a one-sentence query is itself)."""
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()] or [text]
    if len(sentences) <= max_parts:
        return sentences
    size = -(-len(sentences) // max_parts)
    return [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]


def document_bm25(
    term_counts: Iterable[list[tuple[int, int, int]]],
    n_documents: int,
    mean_words: float,
    k1: float = 1.2,
    b: float = 0.75,
) -> dict[int, float]:
    """Okapi BM25 of whole documents, one entry per document holding any query term.

    ``term_counts`` has, per query term, ``(document, occurrences, document words)`` rows
    (:meth:`IndexStore.term_counts`). With f the occurrences, n the documents holding the term,
    N the documents and |d| a document's length in words (:func:`count_words`)::

        score(d) = Σ_t idf(t) · f·(k1 + 1) / (f + k1·(1 − b + b·|d| / mean |d|))
        idf(t)   = ln(1 + (N − n + 0.5) / (n + 0.5))

    (k1, b as FTS5's passage BM25; this idf never goes negative, so a term in most documents
    adds little rather than counting against them.)
    """
    scores: dict[int, float] = {}
    for rows in term_counts:
        idf = math.log(1 + (n_documents - len(rows) + 0.5) / (len(rows) + 0.5))
        for doc, f, words in rows:
            norm = k1 * (1 - b + b * words / max(mean_words, 1e-9))
            scores[doc] = scores.get(doc, 0.0) + idf * f * (k1 + 1) / (f + norm)
    return scores

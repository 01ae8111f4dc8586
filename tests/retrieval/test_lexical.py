"""The query's lexical side: words, pairs, nothing of FTS5's syntax; whole-document BM25."""

import sqlite3

import numpy as np
import pytest

from lam.retrieval.lexical import count_words, document_bm25, fts_query, query_pairs, query_sentences, query_words


def test_words_drop_stop_words_unless_nothing_is_left():
    assert query_words("What is the passkey for Sky Nakamura?") == ["passkey", "sky", "nakamura"]
    assert query_words("to be or not to be") == ["to", "be", "or", "not"]
    assert query_words("?!") == []


def test_pairs_are_adjacent_content_words():
    assert query_pairs("What is the passkey for Sky Nakamura?") == ["sky nakamura"]
    assert query_pairs("red shed behind the old library") == ["red shed", "shed behind", "old library"]


def test_fts_syntax_in_a_query_is_only_words():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text)")
    db.execute("INSERT INTO t VALUES ('near the sky line, x marks the spot')")
    for query in ['say "hi" NEAR(x) AND y*', "col:sky OR -x ^start", "sky line"]:
        match = fts_query(query)
        db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()  # never a syntax error
    assert fts_query("") is None and fts_query("...") is None


def test_a_rare_pair_outranks_its_common_first_word():
    """'sky' is everywhere; 'sky nakamura' as a phrase is in one row only."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'porter unicode61')")
    rows = [
        "The sky is blue. Sky Nakamura's key is 1. The sun is yellow.",
        "The sky is blue. Amadou Nakamura's key is 2. The sky is grey today.",
    ] + ["The sky is blue. The grass is green."] * 20
    db.executemany("INSERT INTO t VALUES (?)", [(r,) for r in rows])
    best = db.execute(
        "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT 1", (fts_query("passkey for sky nakamura?"),)
    ).fetchone()[0]
    assert best == 1


def test_long_queries_are_cut_into_at_most_max_parts():
    assert query_sentences("One question?") == ["One question?"]
    parts = query_sentences(" ".join(f"Sentence {i}." for i in range(20)), max_parts=8)
    assert len(parts) <= 8 and " ".join(parts) == " ".join(f"Sentence {i}." for i in range(20))


def test_document_bm25_equals_bm25s_on_the_same_counts():
    """The whole-document score is Okapi BM25 with Lucene's idf: bm25s's reference on a toy corpus."""
    bm25s = pytest.importorskip("bm25s")
    corpus = [
        "apple banana apple cherry",
        "banana banana banana",
        "cherry date elderberry fig grape apple",
        "grape grape apple",
        "kiwi",
    ]
    words = [text.split() for text in corpus]
    query = ["apple", "grape", "kiwi", "zucchini"]
    counts = [[(d, w.count(t), len(w)) for d, w in enumerate(words) if t in w] for t in query]
    ours = document_bm25(counts, len(corpus), float(np.mean([len(w) for w in words])), k1=1.2, b=0.75)
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(bm25s.tokenize(corpus, stopwords=None, show_progress=False), show_progress=False)
    expected = reference.get_scores(query) * (1.2 + 1)  # Lucene leaves out the constant factor (k1 + 1)
    np.testing.assert_allclose([ours.get(d, 0.0) for d in range(len(corpus))], expected, rtol=1e-5)
    assert ours[3] > ours[0] > 0  # two grapes and an apple in a short text beat two apples in a longer one


def test_a_term_in_most_documents_never_counts_against_them():
    counts = [[(d, 1, 10) for d in range(9)]]  # in 9 of 10 documents
    assert all(score > 0 for score in document_bm25(counts, 10, 10.0).values())


def test_count_words_splits_text_as_fts5_does():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'porter unicode61')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    text = "snake_case, O'Brien's 3.14 café—naïve x2 ½ 東京 e-mail  tabs\tand\nlines!"
    db.execute("INSERT INTO t VALUES (?)", (text,))
    assert count_words(text) == db.execute("SELECT COUNT(*) FROM v").fetchone()[0] == 17

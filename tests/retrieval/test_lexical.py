"""The query's lexical side: words, pairs, and nothing of FTS5's syntax."""

import sqlite3

from lam.retrieval.lexical import fts_query, query_pairs, query_sentences, query_words


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

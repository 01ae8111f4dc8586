"""Index / search: behaviour, persistence, atomicity, bad input."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from lam import LAMIndexError
from lam.retrieval import Index
from lam.retrieval.lexical import count_words
from lam.retrieval.store import vectors_from_blobs

HAYSTACK = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


def _corpus() -> dict[str, str]:
    return {
        "alice": HAYSTACK * 60 + "Alice keeps her bicycle in the red shed behind the library. " + HAYSTACK * 40,
        "bob": HAYSTACK * 30 + "Bob's favourite dish is a spicy lentil soup with lemon. " + HAYSTACK * 70,
        "carol": "Carol studies volcanoes and the chemistry of magma in Iceland. " * 3,
        "dan": HAYSTACK * 5,
    }


@pytest.fixture(scope="module")
def built(shipped_lam):
    index = Index(":memory:", shipped_lam)
    index.index_many(_corpus(), show_progress_bar=False)
    return index


def test_finds_the_one_sentence_and_says_where(built):
    corpus = _corpus()
    for query, doc_id, needle in [
        ("Where does Alice keep her bicycle?", "alice", "red shed"),
        ("What is Bob's favourite dish?", "bob", "lentil soup"),
        ("research on magma", "carol", "magma"),
    ]:
        hit = built.search(query, top_k=2)[0]
        assert hit.doc_id == doc_id
        assert needle in hit.passage
        assert corpus[doc_id][hit.start : hit.end] == hit.passage  # offsets point into the document


def test_hits_are_ranked_and_cut_to_top_k(built):
    hits = built.search("Alice bicycle", top_k=3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert set(hits[0].scores) == {"passage", "document", "lexical", "document_lexical"}
    assert len(built.search(["Alice", "Bob"], top_k=1)) == 2


def _signals(index: Index, query: str) -> dict[str, np.ndarray]:
    ids, scores = index.score_all(query, index.query_vectors([query])[0])
    order = np.argsort(ids)
    return {k: np.asarray(v)[order] for k, v in scores.items()}


def test_a_long_query_is_matched_sentence_by_sentence(built):
    """Both passage signals of a two-sentence query are the means of each sentence's own."""
    first, second = "Where does Alice keep her bicycle?", "What is Bob's favourite dish?"
    both, one, two = (_signals(built, q) for q in (f"{first} {second}", first, second))
    for signal in ("passage", "lexical"):
        np.testing.assert_allclose(both[signal], (one[signal] + two[signal]) / 2, rtol=1e-5, atol=1e-6)
    assert both["lexical"][3] == 0  # dan holds neither sentence's words


def test_document_bm25_counts_every_word_of_a_document_once(shipped_lam):
    """Term counts come from the passages' own text: the bridges (which repeat the end of the
    passage before) are not counted, however the words fall across passage boundaries."""
    text = " ".join(f"word{i} zebra" if i % 7 == 0 else f"word{i}" for i in range(3000))
    index = Index(":memory:", shipped_lam)
    index.index("z", text)
    assert index.stats()["passages"] > 3  # several bridges
    assert index.store.terms("Zebras running") == ["run", "zebra"]  # FTS5's Porter stems
    (row,) = index.store.term_counts("zebra")
    assert row[1] == text.count("zebra")
    # the length is the words of the passages' own text, as FTS5 counted them (a word cut by a
    # segment boundary counts twice: once in each passage, for the length as for its term count)
    fts_words = index.store.db.execute("SELECT COUNT(*) FROM lexical_instances WHERE col = 'text'").fetchone()[0]
    assert row[2] == fts_words
    assert count_words(text) <= row[2] <= count_words(text) + index.stats()["passages"]
    assert index.store.term_counts("giraffe") == []


def test_document_lexical_ranks_the_document_that_is_about_the_words(shipped_lam):
    index = Index(":memory:", shipped_lam)
    index.index_many(
        {
            "about": "Volcanoes erupt magma. Magma cools into basalt. Volcanoes shape islands. " * 20,
            "mention": "The sky is blue. " * 100 + "A volcano was on the news once. " + "The grass is green. " * 100,
        },
        show_progress_bar=False,
    )
    s = _signals(index, "volcanoes and magma")
    assert s["document_lexical"][0] > s["document_lexical"][1] > 0  # ids sorted: about, mention
    # BM25's N and mean length are cached per change: they follow adds and removals
    for change in (lambda: index.index("more", "Basalt and more basalt."), lambda: index.remove("about")):
        change()
        _signals(index, "volcanoes and magma")
        assert index._view.totals() == index.store.totals()


def test_document_vectors_equal_encode(built, shipped_lam):
    corpus = _corpus()
    view = built._view
    view._ensure()
    expected = shipped_lam.encode([corpus[d] for d in view.doc_ids])
    assert np.abs(view._doc_vectors - expected).max() < 2e-3  # float16 storage


def test_passage_vectors_are_the_streamed_segments_with_memory(memory_lam, long_text):
    """Reference: run the segments one by one, carrying the memory, and average each."""
    index = Index(":memory:", memory_lam)
    index.index("doc", long_text)
    index._view._ensure()
    stored = index._view._p_vectors
    expected, state = [], None
    with torch.inference_mode():
        bodies = list(memory_lam.segmenter.text_segments(long_text))
        for body in bodies:
            ids, mask = memory_lam.segmenter.frame([body])
            hidden, state = memory_lam.model.forward_segment(ids, mask, state, True)
            mean = hidden[0][mask[0]].mean(0)
            expected.append(torch.nn.functional.normalize(mean, dim=-1).numpy())
    assert len(bodies) > 10
    assert np.abs(stored - np.stack(expected)).max() < 2e-3


def test_batching_does_not_change_vectors(memory_lam, long_text):
    texts = {"a": long_text, "b": long_text[:3000], "c": long_text[4000:]}
    together, alone = Index(":memory:", memory_lam), Index(":memory:", memory_lam)
    together.index_many(texts, show_progress_bar=False)
    for doc_id, text in texts.items():
        alone.index(doc_id, text)
    p1, p2 = together.store.passages()[2], alone.store.passages()[2]
    assert p1.shape == p2.shape and np.abs(p1 - p2).max() < 2e-3


def test_reindexing_replaces_and_later_indexing_keeps(shipped_lam):
    index = Index(":memory:", shipped_lam)
    index.index("a", "The recipe needs flour, eggs and milk.")
    index.index("b", "Whales migrate thousands of kilometres every year.")
    index.search("whales")  # the in-memory view is loaded, then must follow the changes
    index.index("a", "Volcanic eruptions change the weather for years.")
    assert len(index) == 2 and "a" in index and "b" in index
    assert index.stats()["passages"] == 2
    assert not any("recipe" in h.passage for h in index.search("recipe flour eggs"))  # the old text is gone
    assert index.search("volcanic eruptions", top_k=1)[0].doc_id == "a"
    assert index.remove("a") and not index.remove("a")
    assert [h.doc_id for h in index.search("volcanic eruptions")] == ["b"]
    index.clear()
    assert len(index) == 0 and index.search("whales") == []


def test_persistence_round_trip_gives_identical_results(shipped_lam, tmp_path):
    path = tmp_path / "docs.lam"
    queries = ["Where does Alice keep her bicycle?", "volcano chemistry", "green grass"]
    with Index(path, shipped_lam) as index:
        index.index_many(_corpus(), metadata=[{"n": i} for i in range(4)], show_progress_bar=False)
        before = index.search(queries, top_k=4)
    with Index(path, shipped_lam) as reopened:
        assert len(reopened) == 4
        after = reopened.search(queries, top_k=4)
        assert reopened.search("Alice bicycle")[0].metadata == {"n": 0}
    assert before == after  # same ids, scores, passages and offsets, exactly


def test_stats_and_lam_methods(shipped_lam, tmp_path):
    from lam import LAM

    lam = LAM()
    assert len(lam) == 0 and bool(lam)
    lam.index("x", "Penguins live in the southern hemisphere.")
    lam.index_many([("y", "Kangaroos carry their young in a pouch.")])
    assert len(lam) == 2
    assert lam.search("where do penguins live", top_k=1)[0].doc_id == "x"
    stats = lam.stats()["index"]
    assert stats["documents"] == 2 and stats["tokens"] > 10 and stats["search"] == "exact"
    opened = lam.open_index(tmp_path / "i.lam")
    assert len(lam) == 0 and lam.current_index is opened
    lam.clear()


def test_index_file_streams_a_file(shipped_lam, tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(_corpus()["alice"], encoding="utf-8")
    index = Index(":memory:", shipped_lam)
    index.index_file("book", path, metadata={"source": "disk"})
    hit = index.search("Alice bicycle shed")[0]
    assert hit.doc_id == "book" and "red shed" in hit.passage and hit.metadata == {"source": "disk"}
    with pytest.raises(FileNotFoundError):
        index.index_file("nope", tmp_path / "missing.txt")


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda i: i.index(123, "text"), ValueError),
        (lambda i: i.index("", "text"), ValueError),
        (lambda i: i.index("a", None), TypeError),
        (lambda i: i.index("a", b"bytes"), TypeError),
        (lambda i: i.index("a", "   "), ValueError),
        (lambda i: i.index("a", "text", metadata=["not", "a", "dict"]), TypeError),
        (lambda i: i.index_many([("a", "one"), ("a", "two")]), ValueError),
        (lambda i: i.index_many([("a", "one"), ("b", None)]), TypeError),
        (lambda i: i.index_many(["just a string"]), TypeError),
        (lambda i: i.index_many([("a", "one")], batch_size=0), ValueError),
        (lambda i: i.search(""), ValueError),
        (lambda i: i.search(None), TypeError),
        (lambda i: i.search("ok", top_k=0), ValueError),
        (lambda i: i.remove(None), ValueError),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_lost(shipped_lam, call, error):
    index = Index(":memory:", shipped_lam)
    index.index("keep", "This document must survive every bad call.")
    with pytest.raises(error):
        call(index)
    assert len(index) == 1 and index.search("survive", top_k=1)[0].doc_id == "keep"


def test_corrupt_or_foreign_index_files_are_refused_untouched(shipped_lam, tmp_path):
    garbage = tmp_path / "garbage.lam"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LAMIndexError, match="not a LAM index"):
        Index(garbage, shipped_lam)
    assert garbage.read_bytes() == b"this is not a database" * 100
    with pytest.raises(LAMIndexError, match="directory"):
        Index(tmp_path, shipped_lam)
    # another model's index, the same weights with the memory or pooling of another config (other
    # vectors), and one written by an older LAM (schema 1: one lexical column)
    memory = "off" if shipped_lam.config.memory else "on"
    pooling = "mean" if shipped_lam.config.pooling != "mean" else "segment-mean"
    for key, value, error in [
        ("weights_sha256", "another-model", "weights_sha256"),
        ("memory", memory, "memory"),
        ("pooling", pooling, "pooling"),
        ("schema", "1", "rebuild"),
    ]:
        other = tmp_path / f"{key}.lam"
        Index(other, shipped_lam).close()
        with sqlite3.connect(other) as db:
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        with pytest.raises(LAMIndexError, match=error):
            Index(other, shipped_lam)
    older_cut = tmp_path / "segments.lam"  # written before segments were recorded: other passages
    Index(older_cut, shipped_lam).close()
    with sqlite3.connect(older_cut) as db:
        db.execute("DELETE FROM meta WHERE key = 'segments'")
    with pytest.raises(LAMIndexError, match="segments=None"):
        Index(older_cut, shipped_lam)


_WRITER = textwrap.dedent(
    """
    import sys
    from lam import LAM, Index
    index = Index(sys.argv[1], LAM())
    docs = [(f"doc{i}", f"Document number {i} talks about topic {i}. " * (30 + i)) for i in range(400)]
    index.index_many(docs, batch_size=2, show_progress_bar=False)
    """
)


def test_kill_9_mid_index_many_leaves_only_whole_documents(tmp_path):
    path = tmp_path / "crash.lam"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    try:
        seen, deadline = 0, time.time() + 240
        while seen < 6 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if path.exists():
                try:
                    with sqlite3.connect(path, timeout=1) as db:
                        seen = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
                except sqlite3.OperationalError:
                    pass  # schema not there yet
        assert proc.poll() is None, "the writer finished before it could be killed"
        proc.kill()  # SIGKILL: no cleanup, no rollback by the process itself
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen >= 6
    from lam import LAM

    index = Index(path, LAM())
    n = len(index)
    assert n >= seen and n % 2 == 0  # whole batches only
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, n_passages, vector FROM documents").fetchall()
        for key, n_passages, vector in rows:
            assert db.execute("SELECT COUNT(*) FROM passages WHERE doc = ?", (key,)).fetchone()[0] == n_passages > 0
            assert len(vector) == 2 * 384 and np.isfinite(vectors_from_blobs([vector], 384)).all()
        assert (
            db.execute("SELECT COUNT(*) FROM lexical").fetchone()[0]
            == db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        )
    assert index.search("topic 3", top_k=1)[0].doc_id == "doc3"
    index.index("after", "Indexing goes on after the crash.")
    assert len(index) == n + 1


def test_the_ann_path_proposes_candidates_and_scores_them_exactly(shipped_lam):
    pytest.importorskip("usearch")
    docs = {
        f"d{i}": f"Item {i}: a note about {w} and its uses." for i, w in enumerate("salt iron glass wool oak".split())
    }
    exact, ann = Index(":memory:", shipped_lam), Index(":memory:", shipped_lam, exact_limit=2)
    exact.index_many(docs, show_progress_bar=False)
    ann.index_many(docs, show_progress_bar=False)
    assert exact.stats()["search"] == "exact" and ann.stats()["search"] == "ann"
    for query in ("uses of glass", "oak", "a note about wool"):
        assert [h.doc_id for h in ann.search(query, top_k=3)] == [h.doc_id for h in exact.search(query, top_k=3)]


def test_threads_can_search_while_another_indexes(shipped_lam):
    from concurrent.futures import ThreadPoolExecutor

    index = Index(":memory:", shipped_lam)
    index.index("seed", "Lighthouses guide ships along rocky coasts.")

    def write() -> None:
        for i in range(8):
            index.index(f"d{i}", f"Note {i} about harbours, tides and the keeper's lamp number {i}.")

    def read(k: int) -> int:
        return sum(len(index.search(f"lighthouse lamp {k}", top_k=3)) > 0 for _ in range(4))

    with ThreadPoolExecutor(4) as pool:
        writer = pool.submit(write)
        readers = [pool.submit(read, k) for k in range(3)]
        writer.result()
        assert all(r.result() == 4 for r in readers)
    assert len(index) == 9


def test_the_index_takes_any_encoder_with_the_protocol(tiny_lam):
    """Index needs only model, segmenter, config, weights_sha256 and encode_query (lam.retrieval.index.Encoder)."""

    class Wrapped:
        weights_sha256 = None

        def __init__(self, inner):
            self.model, self.segmenter, self.config = inner.model, inner.segmenter, inner.config
            self.inner, self.queries = inner, 0

        def get_sentence_embedding_dimension(self):
            return self.config.hidden_size

        def encode_query(self, sentences, **kwargs):
            self.queries += 1
            return self.inner.encode(sentences, **kwargs)

    encoder = Wrapped(tiny_lam)
    index = Index(":memory:", encoder)
    index.index_many([("cats", "the cat sat on the mat . " * 5), ("dogs", "a dog ran fast and slow")])
    hits = index.search("the cat sat on the mat", top_k=2)
    assert hits[0].doc_id == "cats" and encoder.queries == 1
    assert index.stats()["documents"] == 2

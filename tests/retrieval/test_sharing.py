"""One index file shared by connections and processes: readers see others' writes, writers wait
a bounded time, SQLite's errors arrive as LAMIndexError, files that are not indexes are refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from lam import LAMIndexError
from lam.retrieval import Index


def _doc(i: int) -> str:
    return f"Report {i} describes the harbour crane number {i} and its weekly maintenance. " * 3


def test_a_reader_sees_documents_another_connection_adds_and_removes(shipped_lam, tmp_path):
    path = tmp_path / "shared.lam"
    writer, reader = Index(path, shipped_lam), Index(path, shipped_lam)
    writer.index_many({f"d{i}": _doc(i) for i in range(3)}, show_progress_bar=False)
    assert {h.doc_id for h in reader.search("harbour crane", top_k=10)} == {"d0", "d1", "d2"}  # caches vectors
    writer.index("lighthouse", "The lighthouse keeper polishes the great lens every evening.")
    hits = reader.search("who polishes the lighthouse lens?", top_k=10)  # KeyError when the cache was stale
    assert hits[0].doc_id == "lighthouse" and len(hits) == 4
    assert reader.stats()["documents"] == 4
    writer.remove("lighthouse")
    writer.index("d1", "Now about glaciers and the ice that carves valleys.")  # replaced elsewhere
    hits = reader.search("glaciers carving valleys", top_k=10)
    assert {h.doc_id for h in hits} == {"d0", "d1", "d2"} and hits[0].doc_id == "d1"
    assert "glaciers" in hits[0].passage
    # and the reader's own writes stay in step with what it has cached
    reader.index("d9", _doc(9))
    assert writer.search("crane number 9", top_k=1)[0].doc_id == "d9"
    assert reader.search("crane number 9", top_k=1)[0].doc_id == "d9"
    writer.close(), reader.close()


def test_a_writer_waits_a_bounded_time_then_fails_with_lam_index_error(shipped_lam, tmp_path):
    path = tmp_path / "locked.lam"
    index = Index(path, shipped_lam, timeout=0.3)
    index.index("kept", _doc(1))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    started = time.monotonic()
    with pytest.raises(LAMIndexError, match=r"locked by another writer.*0\.3 s") as caught:
        index.index("blocked", _doc(2))
    assert time.monotonic() - started < 10
    assert str(path) in str(caught.value)
    assert index.search("crane", top_k=5)[0].doc_id == "kept"  # reads never wait
    other.execute("ROLLBACK")
    other.close()
    index.index("later", _doc(3))
    assert sorted(h.doc_id for h in index.search("crane", top_k=5)) == ["kept", "later"]
    with pytest.raises(ValueError, match="timeout"):
        Index(path, shipped_lam, timeout=-1)


def test_a_file_damaged_in_the_middle_gives_lam_index_error_not_sqlite3(shipped_lam, tmp_path):
    path = tmp_path / "damaged.lam"
    with Index(path, shipped_lam) as index:
        index.index_many({f"d{i}": _doc(i) * 20 for i in range(12)}, show_progress_bar=False)
    data = bytearray(path.read_bytes())
    assert len(data) > 64 << 10
    middle = len(data) // 2
    data[middle : middle + 32768] = b"\xa5" * 32768
    path.write_bytes(bytes(data))
    with pytest.raises(LAMIndexError, match=str(path)):
        index = Index(path, shipped_lam)  # may open: the damage is in pages not read yet
        index.search("harbour crane", top_k=3)
        index.stats()
        index.index("new", _doc(99))


def test_an_empty_or_foreign_file_is_refused_unless_asked_to_create(shipped_lam, tmp_path):
    empty = tmp_path / "empty.lam"
    empty.touch()
    with pytest.raises(LAMIndexError, match="empty file"):
        Index(empty, shipped_lam)
    assert empty.stat().st_size == 0
    Index(empty, shipped_lam, create=True).index("a", "A new index in a file made empty beforehand.")
    assert len(Index(empty, shipped_lam, create=False)) == 1

    with pytest.raises(LAMIndexError, match="no index at"):
        Index(tmp_path / "missing.lam", shipped_lam, create=False)
    assert not (tmp_path / "missing.lam").exists()
    with pytest.raises(LAMIndexError, match="does not exist"):
        Index(tmp_path / "no" / "such" / "folder.lam", shipped_lam)

    foreign = tmp_path / "app.db"  # some other program's SQLite database
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    before = foreign.read_bytes()
    with pytest.raises(LAMIndexError, match="not a LAM index"):
        Index(foreign, shipped_lam)
    assert foreign.read_bytes() == before  # no LAM tables were added to it
    with pytest.raises(LAMIndexError, match="not a regular file"):
        Index("/dev/null", shipped_lam)


_WRITER = textwrap.dedent(
    """
    import sys
    from lam import LAM, Index
    index = Index(sys.argv[1], LAM(), timeout=120)
    name = sys.argv[2]
    for i in range(0, 12, 2):
        index.index_many({f"{name}-{k}": f"{name} writes note {k} about kettle {k}. " * 40 for k in (i, i + 1)},
                         show_progress_bar=False)
    """
)

_READER = textwrap.dedent(
    """
    import json, sys, time
    from lam import LAM, Index
    index = Index(sys.argv[1], LAM())
    searches, errors, seen = 0, [], 0
    deadline = time.time() + float(sys.argv[2])
    while time.time() < deadline and seen < 25:
        try:
            hits = index.search("note about a kettle", top_k=30)
            seen = max(seen, len(hits))
            searches += 1
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
    print(json.dumps({"searches": searches, "errors": errors, "seen": seen}))
    """
)


def test_two_writer_processes_a_reader_process_and_the_server_share_one_index(shipped_lam, tmp_path):
    from fastapi.testclient import TestClient

    from lam.server import create_app

    path = tmp_path / "busy.lam"
    Index(path, shipped_lam).index("seed", "The seed document is about nothing in particular.")
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), n]) for n in ("w1", "w2")]
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(path), "240"], stdout=subprocess.PIPE, text=True)
    server_errors, server_seen = [], set()
    with TestClient(create_app(shipped_lam, Index(path, shipped_lam)), base_url="http://localhost") as client:
        while any(p.poll() is None for p in procs):
            r = client.post("/v1/search", json={"query": "kettle note", "top_k": 30})
            if r.status_code != 200:
                server_errors.append(r.text)
            else:
                server_seen |= {h["doc_id"] for h in r.json()["data"]}
            time.sleep(0.05)
        assert [p.wait() for p in procs] == [0, 0]
        final = client.post("/v1/search", json={"query": "kettle note", "top_k": 30}).json()["data"]
        deleted = client.delete("/v1/documents/w1-0")
        assert deleted.status_code == 200, deleted.text
    out, _ = reader.communicate(timeout=300)
    report = json.loads(out)
    assert server_errors == [] and report["errors"] == []
    assert report["searches"] > 0 and report["seen"] >= 24
    assert {h["doc_id"] for h in final} == {f"{w}-{k}" for w in ("w1", "w2") for k in range(12)} | {"seed"}
    assert len(server_seen) > 1
    assert len(Index(path, shipped_lam)) == 24

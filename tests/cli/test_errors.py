"""Every user error of the commands is one line (no traceback), found before the model runs;
stdin and --lines are streamed; outputs appear whole or not at all."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from lam.cli.main import cli


def _run(*args: str, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def _one_line_error(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # handled, not a crash
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


class _Stdin(io.RawIOBase):
    """A stdin that hands out ``data`` and refuses to be read whole (``readall``)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), len(self.data) - self.position, 4096)
        buffer[:n] = self.data[self.position : self.position + n]
        self.position += n
        return n

    def readall(self) -> bytes:
        raise AssertionError("stdin was read whole")


def test_stdin_is_streamed_not_read_whole(tmp_path, shipped_lam):
    text = "The river bends twice before it reaches the old mill by the bridge. " * 300
    out = tmp_path / "stdin.npy"
    result = _run("encode", "-", "-o", str(out), input=io.BufferedReader(_Stdin(text.encode())))
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(out)[0], shipped_lam.encode(text), atol=1e-5)


def test_lines_are_embedded_while_the_input_is_still_being_read(tmp_path, monkeypatch):
    from lam.encoder import LAM

    data = "".join(f"line {i} about a small boat on the lake\n" for i in range(3000)).encode()
    stdin = _Stdin(data)
    read_at_first_batch = []
    encode = LAM.encode

    def spy(self, *args, **kwargs):
        read_at_first_batch.append(stdin.position)
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(LAM, "encode", spy)
    out = tmp_path / "lines.npy"
    result = _run("encode", "-", "--lines", "-o", str(out), input=io.BufferedReader(stdin))
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (3000, 384)
    assert read_at_first_batch[0] < len(data) // 2  # not all read before the first model call


def test_undecodable_lines_file_is_one_line_and_nothing_is_written(tmp_path):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9 au lait\nsecond line\n".encode("latin-1"))
    out = tmp_path / "out.jsonl"
    _one_line_error(_run("encode", str(bad), "--lines", "-o", str(out)), 1, str(bad), "not utf-8 text")
    assert list(tmp_path.iterdir()) == [bad]  # no output, no temporary file
    ok = _run("encode", str(bad), "--lines", "--encoding", "latin-1", "-o", str(out))
    assert ok.exit_code == 0, ok.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"{bad}:1", f"{bad}:2"]


def test_a_lone_surrogate_in_jsonl_names_the_line_and_can_be_skipped(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "bad \\ud800 here"}\n{"id": "c", "text": "ok"}\n')
    out = tmp_path / "out.jsonl"
    _one_line_error(_run("encode", str(src), "-o", str(out)), 2, f"{src}:2", "lone surrogate")
    assert not out.exists()
    skipped = _run("encode", str(src), "-o", str(out), "--skip-errors")
    assert skipped.exit_code == 0, skipped.output
    assert "warning: skipping" in skipped.output and f"{src}:2" in skipped.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a", "c"]


def test_an_empty_lines_file_gives_an_empty_matrix(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "e.npy"
    result = _run("encode", str(empty), "--lines", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (0, 384) and out.with_suffix(".ids.txt").read_text() == ""
    assert "no texts" in result.output


def test_output_and_dimension_errors_come_before_any_work(tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("hello")
    # the output folder is checked before the model is even looked for
    missing = _run("encode", str(doc), "-o", str(tmp_path / "no" / "out.npy"), "--model", str(tmp_path / "nope"))
    _one_line_error(missing, 2, "does not exist")
    _one_line_error(_run("encode", str(doc), "--output-dim", "999"), 2, "at most 384")
    _one_line_error(_run("encode", str(doc), "--encoding", "klingon"), 2, "unknown encoding")


def test_one_undecodable_file_in_a_folder_fails_it_or_is_skipped(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("An ordinary note about gardens.")
    (docs / "b.txt").write_bytes(b"\xff\xfe\x00\x81 binary")
    (docs / "c.txt").write_text("Another note, about rivers.")
    out = tmp_path / "out.npy"
    _one_line_error(_run("encode", str(docs), "-o", str(out)), 1, "b.txt", "not utf-8 text")
    assert not out.exists()
    skipped = _run("encode", str(docs), "-o", str(out), "--skip-errors")
    assert skipped.exit_code == 0 and "warning: skipping" in skipped.output and "b.txt" in skipped.output
    ids = out.with_suffix(".ids.txt").read_text().split()
    assert np.load(out).shape == (2, 384) and [i.rsplit("/", 1)[1] for i in ids] == ["a.txt", "c.txt"]


def test_a_failure_midway_keeps_the_old_output_and_leaves_no_part_file(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    data = b"".join(b"good line %d\n" % i for i in range(200)) + b"\xff\xfe broken\n"
    result = _run("encode", "-", "--lines", "-o", str(out), input=data)
    _one_line_error(result, 1, "stdin:201", "not utf-8 text")
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_lam_index_refuses_a_device_and_creates_no_index(tmp_path):
    target = tmp_path / "x.lam"
    _one_line_error(_run("index", "/dev/zero", "--index", str(target)), 2, "not a regular file")
    assert not target.exists()
    # failing before anything is committed (stdin that does not decode) leaves no file either
    _one_line_error(_run("index", "-", "--lines", "--index", str(target), input=b"\xff\xfe\n"), 1, "not utf-8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"plain text, not an index"])
def test_search_and_index_refuse_a_file_that_is_not_an_index(tmp_path, content):
    path = tmp_path / "odd.lam"
    path.write_bytes(content)
    doc = tmp_path / "a.txt"
    doc.write_text("hello there")
    _one_line_error(_run("search", "hello", "--index", str(path)), 1, str(path))
    _one_line_error(_run("index", str(doc), "--index", str(path)), 1, str(path))
    assert path.read_bytes() == content


def test_lam_index_streams_stdin_into_one_document(tmp_path):
    target = tmp_path / "s.lam"
    text = "The quarry closed in winter and the workers walked home along the canal. " * 200
    result = _run("index", "-", "--index", str(target), input=io.BufferedReader(_Stdin(text.encode())))
    assert result.exit_code == 0, result.output
    hits = _run("search", "quarry workers canal", "--index", str(target), "--json")
    assert json.loads(hits.output.splitlines()[0])["doc_id"] == "stdin"


def test_lam_index_waits_a_bounded_time_for_another_writer(tmp_path, shipped_lam):
    import sqlite3

    from lam.retrieval import Index

    target = tmp_path / "busy.lam"
    Index(target, shipped_lam).index("first", "An index that another process is writing to.")
    doc = tmp_path / "a.txt"
    doc.write_text("A document that has to wait for the other writer.")
    other = sqlite3.connect(target, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        _one_line_error(_run("index", str(doc), "--index", str(target), "--wait", "0.2"), 1, "locked by another writer")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _run("index", str(doc), "--index", str(target)).exit_code == 0
    assert len(Index(target, shipped_lam)) == 2


def test_progress_counts_tokens_for_a_streamed_text(tmp_path, shipped_lam):
    text = "The ferry leaves at dawn and returns when the tide allows it. " * 100
    out = tmp_path / "s.npy"
    result = _run("encode", "-", "-o", str(out), "--progress", input=text.encode())
    assert result.exit_code == 0, result.output
    assert f"{shipped_lam.count_tokens(text) / 1000:.2f}ktok" in result.output  # tqdm's unit scale

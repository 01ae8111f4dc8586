"""`lam encode` end to end, in a real subprocess and through click's runner."""

import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

from lam.cli.main import cli


def test_files_folder_and_npy(tmp_path, shipped_lam):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The cat sat on the mat.")
    (docs / "b.txt").write_text("A dog ran in the park.")
    (docs / "skip.md").write_text("not taken")
    out = tmp_path / "out.npy"
    result = CliRunner().invoke(cli, ["encode", str(docs), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    matrix = np.load(out)
    ids = out.with_suffix(".ids.txt").read_text().split()
    assert matrix.shape == (2, 384) and ids[0].endswith("a.txt")
    np.testing.assert_allclose(matrix[0], shipped_lam.encode("The cat sat on the mat."), atol=1e-5)


def test_jsonl_in_jsonl_out(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "x1", "text": "hello"}) + "\n" + json.dumps({"id": "x2", "text": ""}) + "\n")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["encode", str(src), "-o", str(out), "--output-dim", "64"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["x1", "x2"] and len(rows[0]["embedding"]) == 64


def test_stdin_lines_in_a_real_process(tmp_path):
    out = tmp_path / "q.npy"
    proc = subprocess.run(
        [sys.executable, "-m", "lam.cli.main", "encode", "-", "--lines", "-o", str(out)],
        input="first line\nsecond line\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert np.load(out).shape == (2, 384)


def test_bad_inputs_give_usage_errors(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["encode", str(tmp_path / "missing.txt")]).exit_code == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    result = runner.invoke(cli, ["encode", str(bad)])
    assert result.exit_code == 2 and "not valid JSON" in result.output
    ok = tmp_path / "ok.txt"
    ok.write_text("x")
    assert runner.invoke(cli, ["encode", str(ok), "-o", str(tmp_path / "out.csv")]).exit_code == 2
    assert runner.invoke(cli, ["encode", str(ok), "--model", str(tmp_path)]).exit_code == 1


def test_binary_file_is_a_clear_error(tmp_path):
    (tmp_path / "blob.txt").write_bytes(b"\xff\xfe\x00\x81 binary")
    result = CliRunner().invoke(cli, ["encode", str(tmp_path / "blob.txt")])
    assert result.exit_code == 1 and "not utf-8 text" in result.output.lower()

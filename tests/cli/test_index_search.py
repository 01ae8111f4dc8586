"""`lam index` and `lam search` end to end."""

import json

from click.testing import CliRunner

from lam.cli.main import cli


def test_index_then_search(tmp_path, shipped_lam):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.txt").write_text("Tomatoes need full sun and regular watering. " * 40)
    (docs / "space.txt").write_text(
        "Rockets burn fuel. " * 100 + "The probe reached Saturn's moon Titan in 2004. " + "Orbits are ellipses. " * 50
    )
    (docs / "empty.txt").write_text("   ")
    index = tmp_path / "i.lam"
    run = CliRunner().invoke(cli, ["index", str(docs), "--index", str(index), "--no-progress"])
    assert run.exit_code == 0, run.output
    assert "2 documents" in run.output and "1 empty skipped" in run.output

    found = CliRunner().invoke(cli, ["search", "When did the probe reach Titan?", "--index", str(index), "-k", "1"])
    assert found.exit_code == 0, found.output
    assert "space.txt" in found.output and "Titan" in found.output

    as_json = CliRunner().invoke(cli, ["search", "tomatoes sun", "--index", str(index), "--json"])
    hits = [json.loads(line) for line in as_json.output.splitlines()]
    assert hits[0]["doc_id"].endswith("garden.txt") and len(hits) == 2
    text = (docs / "garden.txt").read_text()
    assert text[hits[0]["start"] : hits[0]["end"]] == hits[0]["passage"]

    again = CliRunner().invoke(cli, ["index", str(docs / "garden.txt"), "--index", str(index), "--no-progress"])
    assert again.exit_code == 0 and "2 documents" in again.output  # re-indexing replaces


def test_search_errors_are_clear(tmp_path):
    missing = CliRunner().invoke(cli, ["search", "x", "--index", str(tmp_path / "none.lam")])
    assert missing.exit_code != 0 and "no index" in missing.output
    bad = tmp_path / "bad.lam"
    bad.write_bytes(b"not sqlite at all" * 64)
    corrupt = CliRunner().invoke(cli, ["search", "x", "--index", str(bad)])
    assert corrupt.exit_code != 0 and "not a LAM index" in corrupt.output
    assert bad.read_bytes() == b"not sqlite at all" * 64
    empty = CliRunner().invoke(cli, ["search", "  ", "--index", str(bad)])
    assert empty.exit_code != 0 and "empty" in empty.output


def test_quantized_index_is_its_own_and_refuses_the_float_model(tmp_path):
    doc = tmp_path / "note.txt"
    doc.write_text("The meeting moved the launch to March because the supplier was late. " * 5)
    index = tmp_path / "q.lam"
    built = CliRunner().invoke(cli, ["index", str(doc), "--index", str(index), "--quantize", "int8", "--no-progress"])
    assert built.exit_code == 0, built.output
    query = "why was the launch moved?"
    found = CliRunner().invoke(cli, ["search", query, "--index", str(index), "--quantize", "int8"])
    assert found.exit_code == 0 and "note.txt" in found.output
    mixed = CliRunner().invoke(cli, ["search", "launch", "--index", str(index)])  # float vectors, int8 index
    assert mixed.exit_code != 0 and "weights_sha256" in mixed.output

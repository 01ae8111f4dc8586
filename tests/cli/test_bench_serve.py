"""`lam bench` measures with the options it is given; `lam serve` refuses bad settings cleanly;
every command that loads a model takes the same model options."""

import json

import pytest
from click.testing import CliRunner

from lam.cli.encode import encode
from lam.cli.evaluate import bench
from lam.cli.main import cli
from lam.cli.search import index_command, search_command
from lam.cli.serve import serve


def test_bench_prints_figures(tmp_path):
    out = tmp_path / "bench.json"
    run = CliRunner().invoke(cli, ["bench", "--texts", "40", "--long-tokens", "600", "-o", str(out)])
    assert run.exit_code == 0, run.output
    result = json.loads(out.read_text())
    assert result["texts"]["texts"] == 40 and result["texts"]["texts_per_s"] > 0
    assert result["long_text"]["tokens"] >= 600 and result["long_text"]["tokens_per_s"] > 0
    assert result["options"] == {"quantize": None, "backend": "torch", "device": "cpu"}


def test_bench_on_given_texts(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("first line\nsecond line\nthird\n")
    run = CliRunner().invoke(cli, ["bench", str(lines), "--lines", "--long-tokens", "0"])
    assert run.exit_code == 0, run.output
    result = json.loads(run.output)
    assert result["texts"]["texts"] == 3 and "long_text" not in result


def test_bad_option_mixes_are_clean_errors():
    mixed = CliRunner().invoke(cli, ["bench", "--backend", "onnx", "--quantize", "int8", "--long-tokens", "0"])
    assert mixed.exit_code != 0 and "Error" in mixed.output and "Traceback" not in mixed.output


def test_serve_refuses_bad_settings():
    pytest.importorskip("fastapi")
    too_wide = CliRunner().invoke(cli, ["serve", "--output-dim", "999"])
    assert too_wide.exit_code != 0 and "--output-dim) must be in [1, 384]" in too_wide.output


@pytest.mark.parametrize("command", [encode, index_command, search_command, bench, serve])
def test_model_options_are_the_same_everywhere(command):
    names = {p.name for p in command.params}
    assert {"model_path", "device", "quantize", "backend"} <= names


def test_every_model_command_takes_model_and_device():
    from lam.cli.corpus import embed_corpus_command, import_corpus_command
    from lam.cli.evaluate import eval_command
    from lam.cli.train import distill

    for command in (eval_command, distill, embed_corpus_command, import_corpus_command):
        assert {"model_path", "device"} <= {p.name for p in command.params}, command.name

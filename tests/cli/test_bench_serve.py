"""`lam bench` measures with the options it is given; `lam serve` refuses bad settings cleanly;
every command that loads a model takes the same model options."""

import json

import pytest
from click.testing import CliRunner

from lam.cli.main import cli
from tests.conftest import SHARED_DATA


def test_bench_prints_figures(tmp_path):
    out = tmp_path / "bench.json"
    run = CliRunner().invoke(cli, ["bench", "--texts", "40", "--long-tokens", "600", "-o", str(out)])
    assert run.exit_code == 0, run.output
    result = json.loads(out.read_text())
    assert result["texts"]["texts"] == 40 and result["texts"]["texts_per_s"] > 0
    assert result["long_text"]["tokens"] >= 600 and result["long_text"]["tokens_per_s"] > 0
    assert result["options"]["threads"] >= 1  # the threads in effect (they follow a busy machine)
    options = {k: v for k, v in result["options"].items() if k != "threads"}
    assert options == {"quantize": None, "backend": "torch", "device": "cpu"}


def test_bench_on_given_texts(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("first line\nsecond line\nthird\n")
    run = CliRunner().invoke(cli, ["bench", str(lines), "--lines", "--long-tokens", "0"])
    assert run.exit_code == 0, run.output
    result = json.loads(run.output)
    assert result["texts"]["texts"] == 3 and "long_text" not in result


def test_bad_option_mixes_are_clean_errors():
    mixed = CliRunner().invoke(cli, ["bench", "--backend", "onnx", "--device", "meta", "--long-tokens", "0"])
    assert mixed.exit_code != 0 and "Error" in mixed.output and "Traceback" not in mixed.output


def test_serve_refuses_bad_settings():
    pytest.importorskip("fastapi")
    too_wide = CliRunner().invoke(cli, ["serve", "--output-dim", "999"])
    assert too_wide.exit_code != 0 and "--output-dim) must be in [1, 384]" in too_wide.output


@pytest.mark.parametrize(
    "args",
    [
        ["encode", "-"],
        ["index", "-", "--index", "{tmp}/i.lam"],
        ["bench", "--texts", "2", "--long-tokens", "0"],
        ["serve", "--port", "8799"],
        ["import-corpus", "{tmp}", "--index", "{tmp}/j.lam"],
        ["eval", "--suite", "sts", "--encoder", "lam", "--out", "{tmp}/eval"],
        ["distill", "--steps", "1", "--out", "{tmp}/run"],
    ],
)
def test_every_model_command_reports_a_bad_model_in_one_line(tmp_path, args):
    """Each command that loads a model takes --model and says what is wrong with it, no traceback,
    before writing anything."""
    pytest.importorskip("fastapi")
    if args[0] == "eval" and not (SHARED_DATA / "stsb").exists():
        pytest.skip("needs ../shared/data (eval reports missing data before it loads the model)")
    argv = [a.format(tmp=tmp_path) for a in args] + ["--model", str(tmp_path / "no-such-model")]
    result = CliRunner().invoke(cli, argv, input="a text\n")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a ClickException, not a crash
    assert "no-such-model" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no index, run folder or record left behind


def test_runtime_options_are_the_same_everywhere():
    """--quantize and --backend reach the model in every command that embeds (an unknown value is a usage error)."""
    for command in ("encode", "index", "search", "bench", "serve"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "--quantize [int8|bf16]" in result.output and "--backend [torch|onnx]" in result.output, command


def test_bench_reports_every_mode_a_user_can_choose():
    run = CliRunner().invoke(cli, ["bench", "--modes", "--texts", "8", "--long-tokens", "300"])
    assert run.exit_code == 0, run.output
    modes = json.loads(run.output)["modes"]
    chosen = [(m["options"]["quantize"], m["options"]["backend"]) for m in modes]
    assert chosen == [(None, "torch"), ("int8", "torch"), ("bf16", "torch"), (None, "onnx"), ("int8", "onnx")]
    for m in modes:
        assert m["texts"]["texts_per_s"] > 0 and m["options"]["threads"] >= 1
        assert ("long_text" in m) == (m["options"]["backend"] == "torch")

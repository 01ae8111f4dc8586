"""Weight interpolation: the ends reproduce their models, the midpoint is the mean, and
mismatched models are refused."""

import pytest
import torch

from lam import LAM
from lam.distill.merge import interpolate_models, interpolate_states
from lam.errors import WeightsError
from lam.persistence import load_model_files, save_model_files
from tests.conftest import make_tiny_lam, mock_tokenizer


def _save(lam: LAM, path):
    return save_model_files(lam.model, mock_tokenizer(), path)


def test_states_interpolate_linearly_and_refuse_mismatches():
    a = {"w": torch.zeros(2, 2), "ids": torch.arange(3)}
    b = {"w": torch.full((2, 2), 4.0), "ids": torch.arange(3)}
    assert torch.equal(interpolate_states(a, b, 0.25)["w"], torch.ones(2, 2))
    assert torch.equal(interpolate_states(a, b, 0.25)["ids"], torch.arange(3))
    with pytest.raises(ValueError):
        interpolate_states(a, b, 1.5)
    with pytest.raises(WeightsError, match="different tensors"):
        interpolate_states(a, {"w": b["w"]}, 0.5)
    with pytest.raises(WeightsError, match="shapes"):
        interpolate_states(a, {**b, "w": torch.zeros(3)}, 0.5)
    with pytest.raises(WeightsError, match="integer"):
        interpolate_states(a, {**b, "ids": torch.arange(1, 4)}, 0.5)


def test_models_interpolate_end_to_end(tmp_path):
    dir_a = _save(make_tiny_lam(seed=0), tmp_path / "a")
    dir_b = _save(make_tiny_lam(seed=1), tmp_path / "b")
    _, state_a, _ = load_model_files(dir_a)
    _, state_b, _ = load_model_files(dir_b)
    for alpha, expected in ((0.0, state_a), (1.0, state_b)):
        out = interpolate_models(dir_a, dir_b, alpha, tmp_path / f"m{alpha}")
        _, state, _ = load_model_files(out)
        assert all(torch.equal(state[k], expected[k]) for k in state)
    mid = interpolate_models(dir_a, dir_b, 0.5, tmp_path / "mid", name="mid")
    config, state, _ = load_model_files(mid)
    assert config.name == "mid"
    key = next(k for k in state if state_a[k].is_floating_point() and not torch.equal(state_a[k], state_b[k]))
    assert torch.allclose(state[key], (state_a[key] + state_b[key]) / 2, atol=2e-3)  # fp16 storage
    assert LAM(mid).encode(["the cat sat on the mat"]).shape == (1, 32)


def test_models_of_different_shapes_are_refused(tmp_path):
    dir_a = _save(make_tiny_lam(seed=0), tmp_path / "a")
    dir_b = _save(make_tiny_lam(seed=0, segment_len=10), tmp_path / "b")
    with pytest.raises(WeightsError, match="segment_len"):
        interpolate_models(dir_a, dir_b, 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_merges_and_reports_mismatches_cleanly(tmp_path):
    from click.testing import CliRunner

    from lam.cli.main import cli

    dir_a = _save(make_tiny_lam(seed=0), tmp_path / "a")
    dir_b = _save(make_tiny_lam(seed=1), tmp_path / "b")
    runner = CliRunner()
    ok = runner.invoke(cli, ["merge", str(dir_a), str(dir_b), "--alpha", "0.3", "--out", str(tmp_path / "m")])
    assert ok.exit_code == 0, ok.output
    assert load_model_files(tmp_path / "m")[0].name == "tiny~tiny@0.3"
    dir_c = _save(make_tiny_lam(seed=0, segment_len=10), tmp_path / "c")
    bad = runner.invoke(cli, ["merge", str(dir_a), str(dir_c), "--alpha", "0.3", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "segment_len" in bad.output and "Traceback" not in bad.output
    assert runner.invoke(cli, ["merge", str(dir_a), str(dir_b), "--alpha", "2", "--out", "y"]).exit_code == 2

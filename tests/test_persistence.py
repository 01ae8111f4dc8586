"""Invariant 5 (save → load gives identical outputs) and clear errors for broken model folders."""

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from lam import LAM, WeightsError
from lam.persistence import DEFAULT_MODEL_DIR, configure_model
from tests.conftest import make_tiny_lam

TEXTS = ["the cat sat on the mat", "a dog ran", "", "the slow memory of a long text " * 9]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_round_trip_gives_identical_outputs(tmp_path, dtype):
    lam = make_tiny_lam()
    if dtype == torch.float16:  # make the weights exactly representable first
        with torch.no_grad():
            for p in lam.model.parameters():
                p.copy_(p.half().float())
    lam.save_pretrained(tmp_path / "m", dtype=dtype)
    again = LAM(tmp_path / "m")
    np.testing.assert_array_equal(lam.encode(TEXTS), again.encode(TEXTS))
    assert again.config == lam.config


def test_shipped_weights_round_trip(tmp_path, shipped_lam):
    shipped_lam.save_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(LAM(tmp_path / "m").encode(TEXTS), shipped_lam.encode(TEXTS))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m"
    make_tiny_lam().save_pretrained(path)
    return path


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_missing_file(saved, name):
    (saved / name).unlink()
    with pytest.raises(WeightsError, match=name):
        LAM(saved)


def test_truncated_weights(saved):
    (saved / "checksums.sha256").unlink()
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot be read"):
        LAM(saved)


def test_flipped_byte_is_caught_by_checksum(saved):
    path = saved / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt"):
        LAM(saved)


def test_missing_and_misshapen_tensors(saved):
    (saved / "checksums.sha256").unlink()
    state = load_file(str(saved / "model.safetensors"))
    state.pop("layers.0.ffn_in.bias")
    save_file(state, str(saved / "model.safetensors"))
    with pytest.raises(WeightsError, match=r"ffn_in\.bias"):
        LAM(saved)
    state["layers.0.ffn_in.bias"] = torch.zeros(3)
    save_file(state, str(saved / "model.safetensors"))
    with pytest.raises(WeightsError, match="wrong shape"):
        LAM(saved)


def test_non_finite_weights(saved):
    (saved / "checksums.sha256").unlink()
    state = load_file(str(saved / "model.safetensors"))
    state["layers.1.ffn_out.bias"][0] = float("nan")
    save_file(state, str(saved / "model.safetensors"))
    with pytest.raises(WeightsError, match="non-finite"):
        LAM(saved)


def test_bad_config(saved):
    (saved / "checksums.sha256").unlink()
    (saved / "config.json").write_text('{"segment_len": 1}')
    with pytest.raises(WeightsError, match="segment_len"):
        LAM(saved)
    (saved / "config.json").write_text("not json")
    with pytest.raises(WeightsError):
        LAM(saved)


def test_bad_paths_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="neither"):
        LAM(str(tmp_path / "does" / "not" / "exist"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WeightsError, match="is a file"):
        LAM(tmp_path / "file.txt")
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="could not fetch"):
        LAM("some-org/some-model-that-is-not-cached", cache_folder=str(tmp_path / "hub"))


def test_default_folder_is_complete_and_checksummed(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    assert {p.name for p in copy.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "checksums.sha256",
    }
    assert load_file(str(copy / "model.safetensors"))["embeddings.word_embeddings.weight"].dtype == torch.float16


def test_rename_keeps_weights_and_checksums(saved):
    weights = (saved / "model.safetensors").read_bytes()
    before = LAM(saved).encode(TEXTS)
    configure_model(saved, name="renamed")
    again = LAM(saved)  # loading re-verifies the rewritten checksums
    assert again.config.name == "renamed"
    assert (saved / "model.safetensors").read_bytes() == weights
    np.testing.assert_array_equal(again.encode(TEXTS), before)


def test_configure_changes_one_field_and_refuses_an_unknown_one(saved):
    configure_model(saved, pooling="mean")
    assert LAM(saved).config.pooling == "mean"  # loads: the checksums were rewritten
    config = (saved / "config.json").read_text()
    with pytest.raises(ValueError, match="unknown LAMConfig fields"):
        configure_model(saved, passage_size=510)
    assert (saved / "config.json").read_text() == config


def test_rename_refuses_a_corrupt_folder(saved):
    data = bytearray((saved / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (saved / "model.safetensors").write_bytes(bytes(data))
    checksums = (saved / "checksums.sha256").read_text()
    with pytest.raises(WeightsError, match="corrupt"):
        configure_model(saved, name="renamed")
    assert (saved / "checksums.sha256").read_text() == checksums


def test_the_bundled_folder_turns_its_trained_memory_on(tmp_path, shipped_lam):
    """The README's recipe for the memory: a copy of the bundled folder with the memory on reads
    the trained memory tensors the bundled config leaves unread (other vectors for long text, the
    same for a text of one segment)."""
    copy = tmp_path / "lam-v1"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    configure_model(copy, memory=True, pooling="segment-idf", name="lam-v1")
    lam_v1 = LAM(copy)
    assert lam_v1.config.memory and not shipped_lam.config.memory
    assert any(float(layer.attention.memory.read_gate.abs().max()) > 0 for layer in lam_v1.model.layers)
    long_text = "the slow memory of a long text keeps what came before . " * 80
    short, long = lam_v1.encode(["the cat sat on the mat", long_text])
    off_short, off_long = shipped_lam.encode(["the cat sat on the mat", long_text])
    np.testing.assert_allclose(short, off_short, atol=1e-6)
    assert float(long @ off_long) < 0.999

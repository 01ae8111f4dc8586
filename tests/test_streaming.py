"""Invariant 3: streaming equals whole-text encode, however the text is cut."""

import itertools

import numpy as np
import pytest


@pytest.mark.parametrize("n_pieces", [1, 7, 1000])
def test_stream_in_pieces_equals_encode(memory_lam, long_text, n_pieces):
    whole = memory_lam.encode(long_text)
    stream = memory_lam.stream()
    cuts = np.linspace(0, len(long_text), n_pieces + 1).astype(int)
    for a, b in itertools.pairwise(cuts):
        stream.feed(long_text[a:b])
    assert stream.segments > 10  # the memory really carried state across segments
    assert float(stream.embedding() @ whole) > 0.99999


def test_stream_equals_encode_on_a_repetitive_text(memory_lam, long_text):
    """The redundancy gate weighs segments the same way whether the text streams or not."""
    text = "The grass is green. The sky is blue. " * 300 + long_text[:2000] + " Here we go." * 200
    stream = memory_lam.stream()
    for a in range(0, len(text), 997):
        stream.feed(text[a : a + 997])
    whole = memory_lam.encode(text)
    assert float(stream.embedding() @ whole) > 0.99999
    plain = memory_lam.encode(text, batch_size=1)
    assert float(plain @ whole) > 0.99999  # batch size does not matter either


def test_embedding_mid_stream_is_the_prefix_embedding(memory_lam, long_text):
    stream = memory_lam.stream()
    stream.feed(long_text[:3001])
    mid = stream.embedding()
    assert float(mid @ memory_lam.encode(long_text[:3001])) > 0.99999
    stream.feed(long_text[3001:])  # reading did not disturb the stream
    assert float(stream.embedding() @ memory_lam.encode(long_text)) > 0.99999


def test_empty_stream_and_reset(memory_lam):
    stream = memory_lam.stream()
    assert float(stream.embedding() @ memory_lam.encode("")) > 0.99999
    stream.feed("something else entirely").reset()
    assert stream.tokens == 0
    assert float(stream.embedding() @ memory_lam.encode("")) > 0.99999
    with pytest.raises(TypeError):
        stream.feed(None)


def test_stream_output_dim_and_max_tokens(memory_lam, long_text):
    stream = memory_lam.stream(max_tokens=150)
    stream.feed(long_text)
    np.testing.assert_allclose(stream.embedding(), memory_lam.encode(long_text, max_tokens=150), atol=1e-5)
    assert stream.embedding(output_dim=32).shape == (32,)


def test_encode_file_equals_encode(memory_lam, long_text, tmp_path):
    path = tmp_path / "doc.txt"
    path.write_text(long_text, encoding="utf-8")
    assert float(memory_lam.encode_file(path) @ memory_lam.encode(long_text)) > 0.99999

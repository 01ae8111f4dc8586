"""The encode contract (sentence-transformers 6.x shaped) and invariant 4, batch invariance."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lam.layers import pool_reference
from tests.conftest import generated_prose, make_tiny_lam, shipped_with_segment_len

SENTENCES = ["The cat sat on the mat.", "A dog ran fast.", "", "Memory is long and text is short."]


def test_list_gives_n_by_d_float32_unit_rows(shipped_lam):
    e = shipped_lam.encode(SENTENCES)
    assert isinstance(e, np.ndarray) and e.shape == (4, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_single_string_gives_a_vector(shipped_lam):
    v = shipped_lam.encode("hello world")
    assert v.shape == (384,)
    np.testing.assert_allclose(v, shipped_lam.encode(["hello world"])[0], atol=1e-6)


def test_empty_inputs(shipped_lam):
    assert shipped_lam.encode([]).shape == (0, 384)
    e = shipped_lam.encode("")
    assert e.shape == (384,) and np.isfinite(e).all() and abs(np.linalg.norm(e) - 1) < 1e-5


def test_semantics_are_sane(shipped_lam):
    e = shipped_lam.encode(["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell."])
    sim = shipped_lam.similarity(e, e)
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_output_dim_truncates_then_normalises(shipped_lam):
    full = shipped_lam.encode(SENTENCES, normalize_embeddings=False)
    e = shipped_lam.encode(SENTENCES, output_dim=64)
    assert e.shape == (4, 64)
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    np.testing.assert_allclose(e, expected, atol=1e-5)
    np.testing.assert_allclose(shipped_lam.encode(SENTENCES, truncate_dim=64), e, atol=1e-6)
    np.testing.assert_allclose(shipped_lam.truncate_embeddings(shipped_lam.encode(SENTENCES), 64), e, atol=1e-5)


@pytest.mark.parametrize("bad", [0, 385, -1, 1.5, True])
def test_bad_output_dim_raises(shipped_lam, bad):
    with pytest.raises(ValueError):
        shipped_lam.encode(SENTENCES, output_dim=bad)


def test_bad_inputs_raise_clear_errors(shipped_lam):
    with pytest.raises(TypeError, match="None"):
        shipped_lam.encode(None)
    with pytest.raises(TypeError, match=r"sentences\[2\] is int"):
        shipped_lam.encode(["a", "b", 3])
    with pytest.raises(TypeError, match=r"sentences\[1\] is NoneType"):
        shipped_lam.encode(["a", None])
    with pytest.raises(TypeError):
        shipped_lam.encode(42)
    with pytest.raises(TypeError):
        shipped_lam.encode(b"bytes")
    with pytest.raises(ValueError, match="batch_size"):
        shipped_lam.encode(SENTENCES, batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        shipped_lam.encode(SENTENCES, precision="float16")
    with pytest.raises(ValueError, match="prompt_name"):
        shipped_lam.encode(SENTENCES, prompt_name="nope")
    with pytest.raises(TypeError):
        shipped_lam.encode(SENTENCES, not_an_option=1)


def test_output_types(shipped_lam):
    t = shipped_lam.encode(SENTENCES, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.shape == (4, 384)
    lst = shipped_lam.encode(SENTENCES, convert_to_numpy=False)
    assert isinstance(lst, list) and len(lst) == 4 and lst[0].shape == (384,)
    b = shipped_lam.encode(SENTENCES, precision="ubinary")
    assert b.dtype == np.uint8 and b.shape == (4, 48)
    i8 = shipped_lam.encode(SENTENCES, precision="int8")
    assert i8.dtype == np.int8 and i8.shape == (4, 384)


def test_order_is_preserved_whatever_the_batching(shipped_lam):
    texts = [f"sentence number {i} " * (i % 7 + 1) for i in range(50)]
    a = shipped_lam.encode(texts, batch_size=7)
    b = np.stack([shipped_lam.encode(t) for t in texts[:10]])
    np.testing.assert_allclose(a[:10], b, atol=1e-5)
    np.testing.assert_allclose(a, shipped_lam.encode(texts, batch_size=64), atol=1e-5)


def test_batch_invariance_with_mixed_lengths(memory_lam, long_text):
    """Invariant 4: alone or inside a batch of mixed lengths (1 to ~30 segments), same vector."""
    texts = [long_text, "short", long_text[:1500], "", long_text[:4000], "a b c " * 40]
    batched = memory_lam.encode(texts, batch_size=4)
    for i, text in enumerate(texts):
        alone = memory_lam.encode(text)
        assert float(batched[i] @ alone) > 0.99999, i


def test_long_text_is_not_truncated(memory_lam, long_text):
    full = memory_lam.encode(long_text)
    capped = memory_lam.encode(long_text, max_tokens=100)
    assert float(full @ capped) < 0.999  # the tail of the text changes the embedding
    np.testing.assert_allclose(capped, memory_lam.encode(long_text[:2000], max_tokens=100), atol=1e-5)


def test_memory_reads_change_long_but_not_short_text(memory_lam, long_text):
    on, off = memory_lam, shipped_with_segment_len(64)
    with torch.no_grad():
        for layer in off.model.layers:
            layer.attention.memory.read_gate.zero_()
    assert float(on.encode("one short sentence.") @ off.encode("one short sentence.")) > 0.99999
    assert float(on.encode(long_text) @ off.encode(long_text)) < 0.999


def test_oversize_batch_is_split_not_crashed(tiny_lam):
    texts = ["the cat sat on the mat"] * 300
    e = tiny_lam.encode(texts, batch_size=10_000)
    assert e.shape == (300, 32)


def test_prompts_and_query_document(shipped_lam):
    lam = make_tiny_lam()
    lam.prompts = {"query": "the ", "document": "a "}
    np.testing.assert_allclose(lam.encode_query("cat"), lam.encode("the cat"), atol=1e-6)
    np.testing.assert_allclose(lam.encode_document("cat"), lam.encode("a cat"), atol=1e-6)
    np.testing.assert_allclose(shipped_lam.encode_query("cat"), shipped_lam.encode("cat"), atol=1e-6)


def test_similarity_functions(shipped_lam):
    e = shipped_lam.encode(SENTENCES)
    sim = shipped_lam.similarity(e, e)
    assert sim.shape == (4, 4)
    torch.testing.assert_close(torch.diagonal(sim), torch.ones(4), atol=1e-5, rtol=0)
    pair = shipped_lam.similarity_pairwise(e, e[::-1].copy())
    assert pair.shape == (4,)
    assert shipped_lam.similarity(e[0], e[1]).shape == (1, 1)
    with pytest.raises(ValueError):
        shipped_lam.similarity_pairwise(e, e[:2])


def test_introspection(shipped_lam):
    assert shipped_lam.get_sentence_embedding_dimension() == 384
    assert shipped_lam.get_embedding_dimension() == 384
    assert shipped_lam.max_seq_length is None
    shipped_lam.encode(SENTENCES)
    s = shipped_lam.stats()
    assert s["texts"] >= 4 and s["tokens"] > 0 and s["embedding_dim"] == 384
    assert s["memory"] is False  # the bundled config leaves the trained memory unread
    assert s["parameters"] > 22_000_000
    assert "LAM(" in repr(shipped_lam) and "segment_len=256" in repr(shipped_lam)
    assert shipped_lam.count_tokens("the cat sat") == 3
    with pytest.raises(ValueError):
        shipped_lam.max_seq_length = 0


def test_bad_device_is_a_clear_error(shipped_lam):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            shipped_lam.encode("x", device="cuda")
    with pytest.raises(ValueError, match="invalid device"):
        shipped_lam.encode("x", device="not-a-device")
    assert shipped_lam.device.type == "cpu"


def test_the_last_few_tokens_of_a_text_are_not_a_segment_of_their_own():
    """A text a little over one segment is the mean of its two halves' vectors, not of a full
    segment and a sliver of its last tokens; a text of one segment is the base model's vector."""
    from tests.conftest import shipped_weights

    lam = shipped_weights(pooling="segment-mean")
    text = generated_prose(4000, seed=3)
    ids = lam.segmenter.body_ids_batch([text])[0][: lam.segmenter.body_len + 20]
    text = lam.segmenter.tokenizer.decode(ids)
    ids = lam.segmenter.body_ids_batch([text])[0]
    assert lam.segmenter.body_len < len(ids) < 1.5 * lam.segmenter.body_len

    def unit(body):
        with torch.inference_mode():
            frame = lam.segmenter.frame([body])
            hidden = lam.model.forward_segment(*frame, None, False)[0][0]
        return torch.nn.functional.normalize(hidden.mean(0), dim=0)

    half = (len(ids) + 1) // 2
    halves = torch.nn.functional.normalize(unit(ids[:half]) + unit(ids[half:]), dim=0).numpy()
    np.testing.assert_allclose(lam.encode(text), halves, atol=1e-5)
    np.testing.assert_allclose(lam.encode(lam.segmenter.tokenizer.decode(ids[:50])), unit(ids[:50]).numpy(), atol=1e-5)


def test_a_memory_nobody_reads_is_skipped_without_changing_outputs(long_text):
    """Closed read gates: encode skips the writes; the reference writes every segment anyway."""
    lam = shipped_with_segment_len(64)
    with torch.no_grad():  # close every gate, whatever the shipped weights learned
        for layer in lam.model.layers:
            layer.attention.memory.read_gate.zero_()
    assert lam.config.memory and not lam.model.memory_is_read()
    state, states, ids_list = None, [], []
    with torch.inference_mode():
        for body in lam.segmenter.text_segments(long_text):
            ids, mask = lam.segmenter.frame([body])
            hidden, state = lam.model.forward_segment(ids, mask, state, True)
            states.append(hidden[0][mask[0]])
            ids_list.append(ids[0][mask[0]].tolist())
    assert state is not None  # the reference really carried a memory
    pooled = pool_reference(states, ids_list, lam.config.pooling)
    reference = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    np.testing.assert_allclose(lam.encode(long_text), reference, atol=1e-5)
    lam.model.layers[0].attention.memory.read_gate.data[0] = 0.1
    assert lam.model.memory_is_read()


_FUZZ_TEXT = st.text(max_size=300) | st.sampled_from(["\ud800", "a\udfffb", "\x00" * 3, "🙂" * 200, "[CLS]" * 50])


@settings(max_examples=150, deadline=None)
@given(
    sentences=_FUZZ_TEXT
    | st.lists(_FUZZ_TEXT, max_size=6)
    | st.lists(st.none() | st.integers() | st.binary(max_size=5) | _FUZZ_TEXT, min_size=1, max_size=4)
    | st.none()
    | st.integers()
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    batch_size=st.integers(1, 8),
)
def test_fuzzed_encode_returns_unit_rows_or_a_clear_error(tiny_lam_session, sentences, batch_size):
    """Any input: either (N, D) finite unit rows, or TypeError/ValueError naming the problem."""
    try:
        out = tiny_lam_session.encode(sentences, batch_size=batch_size)
    except (TypeError, ValueError) as err:
        assert str(err)
        return
    rows = np.atleast_2d(out)
    n = 1 if isinstance(sentences, str) else len(sentences)
    assert rows.shape == (n, tiny_lam_session.get_sentence_embedding_dimension()) and rows.dtype == np.float32
    assert np.isfinite(rows).all() and np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


def test_length_batches_cover_every_text_once_sorted_by_tokens(tiny_lam):
    texts = ["the cat " * n for n in (3, 1, 7, 2, 9, 4, 4, 0, 5)] + ["dog " * 20_000]  # the last: over piece_chars
    tiny_lam.segmenter.piece_chars = 1000
    batches = list(tiny_lam._length_batches(texts, batch_size=3, window_batches=2))
    seen = [i for idx, _, _ in batches for i in idx]
    assert sorted(seen) == list(range(len(texts)))
    for idx, batch, bodies in batches:
        assert batch == [texts[i] for i in idx]
        for i, body in zip(idx, bodies):
            assert (body is None) == (i == len(texts) - 1)  # long texts are left to the stream
    window = [i for idx, _, _ in batches[:2] for i in idx]  # the first window: 6 texts
    counts = [len(tiny_lam.segmenter.body_ids_batch([texts[i]])[0]) for i in window]
    assert counts[0] == 20_000 and counts[1:] == sorted(counts[1:], reverse=True)


def test_the_progress_bar_counts_tokens_when_a_text_is_long(tiny_lam, monkeypatch):
    from tqdm.auto import tqdm

    import lam.encoder

    bars = []

    class Recorded(tqdm):
        def close(self):
            bars.append((self.unit, self.n, self.total))
            super().close()

    monkeypatch.setattr(lam.encoder, "tqdm", Recorded)
    long = generated_prose(14_000, seed=4)  # over piece_chars: tokenised in pieces
    assert len(long) > tiny_lam.segmenter.piece_chars
    tiny_lam.encode(["a short one", long], show_progress_bar=True)
    tokens = tiny_lam.count_tokens(long) + tiny_lam.count_tokens("a short one")
    assert bars[-1] == ("tok", tokens, None)  # every token counted once, as segments finish
    tiny_lam.encode(["one", "two", "three"], show_progress_bar=True)
    assert bars[-1] == ("text", 3, 3)

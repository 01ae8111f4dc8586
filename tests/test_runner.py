"""The segment runner: the threaded loop against the plain one, and streams against encode."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from lam import runner
from lam import threads as lam_threads
from lam.config import POOLINGS
from lam.runner import pooled_sums, pooled_sums_in_thread, to_embeddings
from tests.conftest import shipped_weights


@pytest.fixture
def fixed_threads():
    """torch's thread count held fixed: :func:`lam.threads.adapt` may change it between segments
    when other processes are busy, and another count sums in another order (not bit for bit)."""
    saved, count = dict(lam_threads._adaptive), torch.get_num_threads()
    lam_threads.set_threads(count)
    yield
    lam_threads._adaptive.update(saved)
    torch.set_num_threads(count)


def _bodies(lam, texts):
    return [iter(lam.segmenter.text_segments(t)) for t in texts]


def _recorder(calls):
    def on_step(rows, sums, counts):
        calls.append((threading.current_thread().name, list(rows), sums.clone(), counts.clone()))

    return on_step


@torch.inference_mode()
def test_threaded_steps_equal_the_reference_and_run_on_the_callers_thread(memory_lam, long_text, fixed_threads):
    texts = [long_text, "a short one.", long_text[: len(long_text) // 3]]
    ref_calls, calls = [], []
    ref = pooled_sums(memory_lam.model, memory_lam.segmenter, _bodies(memory_lam, texts), on_step=_recorder(ref_calls))
    with ThreadPoolExecutor(1) as executor:
        got = pooled_sums_in_thread(
            memory_lam.model, memory_lam.segmenter, _bodies(memory_lam, texts), _recorder(calls), executor
        )
    assert len(calls) == len(ref_calls) > 3  # several segments, so the memory state is carried
    for (thread, rows, sums, counts), (_, ref_rows, ref_sums, ref_counts) in zip(calls, ref_calls):
        assert thread == threading.current_thread().name
        assert rows == ref_rows
        torch.testing.assert_close(sums, ref_sums, rtol=0, atol=0)
        torch.testing.assert_close(counts, ref_counts, rtol=0, atol=0)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], ref[1], rtol=0, atol=0)


def test_a_failing_consumer_stops_the_encoder_and_frees_the_executor(memory_lam, long_text, fixed_threads):
    seen = []

    def on_step(rows, sums, counts):
        seen.append(rows)
        if len(seen) == 2:
            raise RuntimeError("disk full")

    with ThreadPoolExecutor(1) as executor:
        with pytest.raises(RuntimeError, match="disk full"):
            pooled_sums_in_thread(
                memory_lam.model, memory_lam.segmenter, _bodies(memory_lam, [long_text]), on_step, executor
            )
        assert len(seen) == 2  # no step is handed over after the failure
        # the executor's one thread is free again: the next call runs to the end
        sums, counts = pooled_sums_in_thread(
            memory_lam.model, memory_lam.segmenter, _bodies(memory_lam, ["a cat sat."]), lambda *a: None, executor
        )
    with torch.inference_mode():
        expected = pooled_sums(memory_lam.model, memory_lam.segmenter, _bodies(memory_lam, ["a cat sat."]))
    torch.testing.assert_close(sums, expected[0], rtol=0, atol=0)
    assert counts.tolist() == expected[1].tolist()


def test_an_encoder_error_is_raised_on_the_callers_thread(memory_lam):
    def broken():
        yield [4, 5, 6]
        raise ValueError("bad piece")

    with pytest.raises(ValueError, match="bad piece"):
        pooled_sums_in_thread(memory_lam.model, memory_lam.segmenter, [broken()], lambda *a: None)


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


def _per_document(steps):
    """Recorded ``on_step`` calls → each document's (segment sum, count) pairs, in call order."""
    out = {}
    for _, rows, step_sums, step_counts in steps:
        for row, s, c in zip(rows, step_sums, step_counts):
            out.setdefault(row, []).append((s, c))
    return out


@pytest.mark.parametrize("pooling", POOLINGS)
@torch.inference_mode()
def test_independent_segments_run_together_give_the_one_at_a_time_result(pooling, long_text, monkeypatch):
    """Without a memory read, a step runs several segments of a document in one forward call;
    the sums and the per-segment steps equal running them one at a time."""
    lam = shipped_weights(segment_len=64, memory=False, pooling=pooling)
    texts = [long_text, "a short one.", long_text[: len(long_text) // 3], long_text[:300]]

    def run(rows_per_step, docs):
        monkeypatch.setattr(runner, "ROWS_PER_STEP", rows_per_step)
        calls, forwards = [], []
        forward = lam.model.forward_segment
        monkeypatch.setattr(lam.model, "forward_segment", lambda ids, *a: forwards.append(len(ids)) or forward(ids, *a))
        out = pooled_sums(lam.model, lam.segmenter, _bodies(lam, docs), on_step=_recorder(calls))
        monkeypatch.undo()
        return out, calls, forwards

    for docs in (texts, texts[:1]):
        (ref_sums, ref_weights), ref_calls, ref_forwards = run(1, docs)
        (sums, weights), calls, forwards = run(4, docs)
        # segments of one text ran together: at least four rows a call while any text is left
        assert len(forwards) < len(ref_forwards) and min(forwards[:-1]) >= 4
        torch.testing.assert_close(
            to_embeddings(sums, weights), to_embeddings(ref_sums, ref_weights), rtol=0, atol=1e-5
        )
        torch.testing.assert_close(weights, ref_weights, rtol=1e-5, atol=0)

        got, ref = _per_document(calls), _per_document(ref_calls)
        assert sorted(got) == sorted(ref)
        for row in ref:  # every document's segments, in order
            assert len(got[row]) == len(ref[row])
            for (s, c), (ref_s, ref_c) in zip(got[row], ref[row]):
                torch.testing.assert_close(s / c, ref_s / ref_c, rtol=0, atol=1e-4)
                assert c == ref_c


@pytest.mark.parametrize("pooling", ["segment-mean", "segment-idf"])
def test_a_stream_runs_independent_segments_together_with_the_same_embedding(pooling, long_text, monkeypatch):
    lam = shipped_weights(segment_len=64, memory=False, pooling=pooling)
    forwards = []
    forward = lam.model.forward_segment
    monkeypatch.setattr(lam.model, "forward_segment", lambda ids, *a: forwards.append(len(ids)) or forward(ids, *a))
    stream = lam.stream()
    for piece in (long_text[:2000], long_text[2000:]):
        stream.feed(piece)
    assert max(forwards) == runner.ROWS_PER_STEP and len(forwards) < stream.segments
    monkeypatch.setattr(runner, "ROWS_PER_STEP", 1)
    one_at_a_time = lam.stream().feed(long_text)
    np.testing.assert_allclose(stream.embedding(), one_at_a_time.embedding(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(stream.embedding(), lam.encode(long_text), rtol=0, atol=1e-5)


def test_a_stream_cuts_the_last_segments_as_encode_does(long_text):
    """Whatever a text's length, a stream fed in pieces ends in encode's last segments (a sliver
    shares its tokens with the full segment before it), with segments run four at a time."""
    lam = shipped_weights(segment_len=64, memory=False, pooling="segment-mean")
    ids = lam.segmenter.body_ids_batch([long_text])[0]
    w = lam.segmenter.body_len
    slivers = 0
    for n in (w + 3, 2 * w + w // 2 - 1, 2 * w + w // 2, 4 * w + 3, 5 * w + 1, 8 * w + 5):
        text = lam.segmenter.tokenizer.decode(ids[:n])
        slivers += lam.count_tokens(text) % (4 * w) < w // 2  # a whole group of four, then a sliver
        stream = lam.stream()
        for a in range(0, len(text), 101):
            stream.feed(text[a : a + 101])
        np.testing.assert_allclose(stream.embedding(), lam.encode(text), rtol=0, atol=1e-5)
    assert slivers >= 2

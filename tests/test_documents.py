"""``pooled_sums_in_thread`` (the index's encoder) against ``pooled_sums`` (the reference)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from lam.documents import pooled_sums, pooled_sums_in_thread
from lam.heap import release_free_memory


def _bodies(lam, texts):
    return [iter(lam.segmenter.text_segments(t)) for t in texts]


def _recorder(calls):
    def on_step(rows, sums, counts):
        calls.append((threading.current_thread().name, list(rows), sums.clone(), counts.clone()))

    return on_step


@torch.inference_mode()
def test_threaded_steps_equal_the_reference_and_run_on_the_callers_thread(memory_lam, long_text):
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


def test_a_failing_consumer_stops_the_encoder_and_frees_the_executor(memory_lam, long_text):
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


def test_release_free_memory_is_safe_to_call():
    assert isinstance(release_free_memory(), bool)

"""MicroBatcher: requests share model calls, each gets its own rows, a full queue refuses."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lam.server.batching import MicroBatcher, QueueFullError


class GatedUpper:
    """run_batch that upper-cases texts, records batch sizes, and can be held closed."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.sizes: list[int] = []

    def __call__(self, texts: list[str]) -> list[str]:
        self.started.set()
        self.gate.wait(10)
        self.sizes.append(len(texts))
        if any("bad" in t for t in texts):
            raise ValueError("bad text")
        return [t.upper() for t in texts]


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_waiting_requests_share_one_call_and_get_their_own_rows():
    fn = GatedUpper()

    async def scenario():
        batcher = MicroBatcher(fn, ThreadPoolExecutor(1), max_batch_texts=64, max_wait_ms=0)
        batcher.start()
        first = asyncio.create_task(batcher.submit(["a"]))
        await _wait_for(fn.started.is_set)  # the first call is running: the rest must wait
        rest = [asyncio.create_task(batcher.submit([f"x{i}", f"y{i}"])) for i in range(5)]
        await _wait_for(lambda: batcher.depth == 6)
        fn.gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results, batcher

    results, batcher = asyncio.run(scenario())
    assert results[0] == ["A"]
    assert results[1:] == [[f"X{i}", f"Y{i}"] for i in range(5)]
    assert fn.sizes == [1, 10]  # five waiting requests, one model call
    assert batcher.batches == 2 and batcher.batched_texts == 11


def test_batches_stop_at_max_batch_texts():
    fn = GatedUpper()

    async def scenario():
        batcher = MicroBatcher(fn, ThreadPoolExecutor(1), max_batch_texts=4, max_wait_ms=0)
        batcher.start()
        first = asyncio.create_task(batcher.submit(["a"]))
        await _wait_for(fn.started.is_set)
        rest = [asyncio.create_task(batcher.submit(["b", "c"])) for _ in range(4)]
        await _wait_for(lambda: batcher.depth == 5)
        fn.gate.set()
        await asyncio.gather(first, *rest)
        await batcher.stop()

    asyncio.run(scenario())
    assert fn.sizes == [1, 4, 4]


def test_full_queue_refuses_at_once_and_recovers():
    fn = GatedUpper()

    async def scenario():
        batcher = MicroBatcher(fn, ThreadPoolExecutor(1), max_batch_texts=1, max_wait_ms=0, max_queue=2)
        batcher.start()
        running = asyncio.create_task(batcher.submit(["a"]))
        await _wait_for(fn.started.is_set)
        queued = [asyncio.create_task(batcher.submit([t])) for t in "bc"]
        await _wait_for(lambda: batcher.depth == 3)
        with pytest.raises(QueueFullError):
            await batcher.submit(["d"])
        fn.gate.set()
        done = await asyncio.gather(running, *queued)
        after = await batcher.submit(["e"])  # room again
        await batcher.stop()
        return done, after

    done, after = asyncio.run(scenario())
    assert done == [["A"], ["B"], ["C"]] and after == ["E"]


def test_one_bad_request_does_not_fail_the_others_in_its_batch():
    fn = GatedUpper()
    fn.gate.set()

    async def scenario():
        batcher = MicroBatcher(fn, ThreadPoolExecutor(1), max_batch_texts=64, max_wait_ms=50)
        batcher.start()
        jobs = [asyncio.create_task(batcher.submit(t)) for t in (["ok1"], ["bad"], ["ok2"])]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return results

    good1, bad, good2 = asyncio.run(scenario())
    assert good1 == ["OK1"] and good2 == ["OK2"]
    assert isinstance(bad, ValueError)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(lambda t: t, ThreadPoolExecutor(1), max_batch_texts=0)

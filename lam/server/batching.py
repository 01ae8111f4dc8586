"""Micro-batching: concurrent embedding requests share one model call, and take turns.

Requests wait in a bounded queue. One worker takes the first job, then every text job already
queued (up to ``max_batch_texts`` texts, waiting at most ``max_wait_ms`` for more), runs the
model once on all their texts in a worker thread, and hands each request its rows. While the
model is busy, new requests pile up, so under load batches grow by themselves and an idle
server answers a lone request with no added wait. A full queue refuses new work at once
(:class:`QueueFullError`, HTTP 503) instead of letting latency grow without bound.

Jobs run first come, first served, and a request holds at most one job in the queue: a long
request submits its work in turns (a chunk of texts, a piece of a long text, one query), each
going to the back of the queue, so short requests that arrive meanwhile wait for one turn, not
for the whole long request. A job whose request was cancelled (its client went away) is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

Result = TypeVar("Result")


class QueueFullError(Exception):
    """The request queue is full: try again later (HTTP 503)."""


@dataclass
class _Job:
    texts: list[str] | None  # None: ``call`` runs alone
    future: asyncio.Future = field(repr=False)
    call: Callable[[], Any] | None = None


class MicroBatcher(Generic[Result]):
    """Collects :meth:`submit` calls into batches for ``run_batch``.

    :param run_batch: texts → one result per text (a list, or anything indexable by a slice);
        runs on ``executor`` (one thread: the model is used by one batch at a time).
    :param max_batch_texts: texts per model call; a single larger request is run alone, whole.
    :param max_wait_ms: how long the worker waits for more requests once it has one.
    :param max_queue: requests waiting at most; beyond it :meth:`submit` raises QueueFullError.
    """

    def __init__(
        self,
        run_batch: Callable[[list[str]], Result],
        executor: Executor,
        max_batch_texts: int = 64,
        max_wait_ms: float = 2.0,
        max_queue: int = 256,
    ) -> None:
        if max_batch_texts < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_texts and max_queue must be ≥ 1 and max_wait_ms ≥ 0")
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch_texts = max_batch_texts
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.batches = 0
        self.batched_texts = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._running = 0  # requests in the batch being run
        self._held: _Job | None = None  # a call job met while collecting a batch: it runs next
        self.calls = 0  # call jobs run
        self.skipped = 0  # jobs dropped because their request was gone

    @property
    def depth(self) -> int:
        """Requests waiting or being run now."""
        waiting = (self._queue.qsize() if self._queue is not None else 0) + (self._held is not None)
        return waiting + self._running

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="lam-micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def submit(self, texts: list[str]) -> Result:
        """This request's results, computed in some batch; raises QueueFullError when full."""
        return await self._enqueue(_Job(list(texts), asyncio.get_running_loop().create_future()))

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the worker thread, alone, in its turn (index work, a piece of a long text)."""
        return await self._enqueue(_Job(None, asyncio.get_running_loop().create_future(), lambda: fn(*args)))

    async def _enqueue(self, job: _Job) -> Any:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(f"{self.max_queue} requests are already waiting") from None
        return await job.future

    async def _next_job(self) -> _Job:
        assert self._queue is not None
        if self._held is not None:
            job, self._held = self._held, None
            return job
        return await self._queue.get()

    async def _collect(self) -> list[_Job]:
        """The next job; if it is a text job, with the text jobs queued right behind it."""
        assert self._queue is not None
        jobs = [await self._next_job()]
        if jobs[0].texts is None:
            return jobs
        size = len(jobs[0].texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch_texts:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if job.texts is None:  # a call runs alone, next: first come, first served
                self._held = job
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            live = [j for j in jobs if not j.future.done()]  # a client that went away is skipped
            self.skipped += len(jobs) - len(live)
            self._running = len(live)
            try:
                if live and live[0].texts is None:
                    await self._run_call(loop, live[0])
                elif live:
                    await self._run(loop, live)
            finally:
                self._running = 0

    async def _run_call(self, loop: asyncio.AbstractEventLoop, job: _Job) -> None:
        try:
            result = await loop.run_in_executor(self.executor, job.call)
        except Exception as err:
            if not job.future.done():
                job.future.set_exception(err)
            return
        finally:
            self.calls += 1
        if not job.future.done():
            job.future.set_result(result)

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        texts = [t for j in jobs for t in j.texts]
        try:
            results = await loop.run_in_executor(self.executor, self.run_batch, texts)
        except Exception as err:
            if len(jobs) > 1:  # one request's texts must not fail the others: run each alone
                for job in jobs:
                    await self._run(loop, [job])
                return
            logger.warning("batch failed: %s: %s", type(err).__name__, err)
            if not jobs[0].future.done():
                jobs[0].future.set_exception(err)
            return
        self.batches += 1
        self.batched_texts += len(texts)
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(results[start : start + len(job.texts)])
            start += len(job.texts)

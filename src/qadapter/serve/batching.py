"""Micro-batching: concurrent requests share one encoder call.

An embedding model costs far less per text in a batch than one text at a time, and a web server receives
requests one by one. :class:`MicroBatcher` sits between them: request handlers ``await submit(texts, kind)``,
a single worker task gathers whatever is queued (up to ``max_batch`` texts, waiting at most ``max_wait_ms`` for
more after the first arrives), runs the encoder in one worker thread (so the event loop keeps accepting
requests and the model is never called from two threads at once), and hands each request its own rows back.

While one batch is being encoded the next one fills up, so under load batches grow by themselves even with
``max_wait_ms=0``; a wait only helps when the encoder is nearly free per extra text (a GPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

#: ``encode_fn(texts, kind) -> (vectors (n, d) float32, token_counts (n,) int)``; runs in the worker thread.
EncodeFn = Callable[[list[str], str], tuple[np.ndarray, np.ndarray]]


class BatcherBusy(RuntimeError):
    """More texts are waiting than the batcher accepts; the client should retry later (HTTP 503)."""


@dataclass
class _Pending:
    texts: list[str]
    kind: str
    future: asyncio.Future[tuple[np.ndarray, np.ndarray]]


@dataclass
class BatchStats:
    """Counters for monitoring and tests: how many encoder calls served how many requests and texts."""

    batches: int = 0
    requests: int = 0
    texts: int = 0
    largest_batch: int = 0

    def record(self, n_requests: int, n_texts: int) -> None:
        self.batches += 1
        self.requests += n_requests
        self.texts += n_texts
        self.largest_batch = max(self.largest_batch, n_texts)


class MicroBatcher:
    """Gathers concurrent ``submit`` calls into batches for one encoder running in one worker thread.

    ``max_pending`` bounds the texts waiting or being encoded: past it, ``submit`` raises :class:`BatcherBusy`
    at once rather than letting latency grow without limit (a request arriving at an idle batcher always runs).

    Use inside a running event loop: ``await start()`` before the first ``submit`` and ``await stop()`` at
    shutdown (the FastAPI app does both in its lifespan).
    """

    def __init__(
        self,
        encode_fn: EncodeFn,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        max_pending: int | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.encode_fn = encode_fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_pending = max_pending
        self.pending = 0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._carry: _Pending | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        if self.running:
            return
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qadapter-encode")
        self._worker = asyncio.get_running_loop().create_task(self._run_forever(), name="qadapter-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still waiting fail with ``RuntimeError`` instead of hanging."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        leftovers = [self._carry] if self._carry else []
        self._carry = None
        while self._queue is not None and not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for item in leftovers:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def run_in_worker(self, texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Call the encoder directly in the worker thread, bypassing the queue (for warm-up)."""
        if self._executor is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.encode_fn, texts, kind)

    async def submit(self, texts: Sequence[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Encode ``texts`` as ``kind``; returns ``(vectors, token_counts)`` for exactly these texts, in order."""
        if not self.running or self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called (or the batcher has stopped)")
        if self.max_pending is not None and self.pending and self.pending + len(texts) > self.max_pending:
            raise BatcherBusy(
                f"{self.pending} texts are already waiting (limit {self.max_pending}); retry shortly"
            )
        future: asyncio.Future[tuple[np.ndarray, np.ndarray]] = asyncio.get_running_loop().create_future()
        self.pending += len(texts)
        try:
            await self._queue.put(_Pending(list(texts), kind, future))
            return await future
        finally:
            self.pending -= len(texts)

    async def _next_batch(self) -> list[_Pending]:
        """Wait for one request, then take more until ``max_batch`` texts or ``max_wait`` has passed.

        A request that would push the batch past ``max_batch`` waits for the next batch (a single request larger
        than ``max_batch`` forms a batch on its own), so small requests never queue behind a huge one.
        """
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        loop = asyncio.get_running_loop()
        if self._carry is not None:
            first, self._carry = self._carry, None
        else:
            first = await self._queue.get()
        batch, n_texts = [first], len(first.texts)
        deadline = loop.time() + self.max_wait
        while n_texts < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if n_texts + len(item.texts) > self.max_batch:
                self._carry = item
                break
            batch.append(item)
            n_texts += len(item.texts)
        return batch

    async def _run_forever(self) -> None:
        while True:
            batch = await self._next_batch()
            live = [item for item in batch if not item.future.done()]  # skip requests whose client went away
            if live:
                await self._encode_batch(live)

    async def _encode_batch(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        self.stats.record(len(batch), sum(len(item.texts) for item in batch))
        for kind in dict.fromkeys(item.kind for item in batch):  # one encoder call per kind, in arrival order
            group = [item for item in batch if item.kind == kind]
            texts = [text for item in group for text in item.texts]
            try:
                vectors, tokens = await loop.run_in_executor(self._executor, self.encode_fn, texts, kind)
                if len(vectors) != len(texts) or len(tokens) != len(texts):
                    raise RuntimeError(f"encoder returned {len(vectors)} vectors for {len(texts)} texts")
            except Exception as exc:  # every waiting request gets the error; the worker keeps serving
                logger.exception("encoding a batch of %d %s texts failed", len(texts), kind)
                for item in group:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            start = 0
            for item in group:
                stop = start + len(item.texts)
                if not item.future.done():
                    item.future.set_result((vectors[start:stop], tokens[start:stop]))
                start = stop

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
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

#: ``encode_fn(texts, kind) -> (vectors (n, d) float32, token_counts (n,) int)``; runs in the worker thread.
EncodeFn = Callable[[list[str], str], tuple[np.ndarray, np.ndarray]]


class BatcherBusy(RuntimeError):
    """The queue is full, by texts or by expected wait; the client should retry later (HTTP 503 + Retry-After)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(TimeoutError):
    """A request was not encoded within its deadline; its queued work was dropped (HTTP 503)."""


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
    encoder_calls: int = 0
    #: requests taken off the queue unencoded because their client left or their deadline passed
    dropped: int = 0
    #: batches that failed and were re-encoded one request at a time to find the request that failed
    isolated: int = 0
    #: requests that were not encoded within their deadline
    deadline_misses: int = 0

    def record(self, n_requests: int, n_texts: int) -> None:
        self.batches += 1
        self.requests += n_requests
        self.texts += n_texts
        self.largest_batch = max(self.largest_batch, n_texts)


class CostEstimate:
    """Seconds an encoder call takes for ``n`` texts, ``overhead + n * per_text``, fitted on recent calls.

    A fixed cost per call (thread hand-off, tokenizer, model start-up) plus a cost per text: a per-text average
    alone would take a one-text call's overhead as the price of every text and refuse work the server can do.
    Until two calls of different sizes are measured the whole time counts per text (the cautious reading).
    """

    def __init__(self, window: int = 32) -> None:
        self.samples: deque[tuple[int, float]] = deque(maxlen=window)
        self.overhead_s = 0.0
        self.per_text_s = 0.0

    def update(self, elapsed_s: float, n_texts: int) -> None:
        if n_texts < 1:
            return
        self.samples.append((n_texts, elapsed_s))
        sizes = np.array([n for n, _ in self.samples], dtype=float)
        times = np.array([t for _, t in self.samples], dtype=float)
        if np.ptp(sizes) == 0:
            self.overhead_s, self.per_text_s = 0.0, float(np.mean(times / sizes))
            return
        per_text, overhead = np.polyfit(sizes, times, 1)
        if overhead < 0 or per_text < 0:  # noisy timings: fall back to the cautious reading
            overhead, per_text = 0.0, float(np.mean(times / sizes))
        self.overhead_s, self.per_text_s = float(overhead), float(per_text)

    def seconds(self, n_texts: int, max_batch: int) -> float:
        """Expected seconds to encode ``n_texts`` in calls of at most ``max_batch`` texts."""
        calls = -(-n_texts // max_batch)
        return calls * self.overhead_s + n_texts * self.per_text_s


class MicroBatcher:
    """Gathers concurrent ``submit`` calls into batches for one encoder running in one worker thread.

    The queue is bounded twice: by texts (``max_pending``) and by time (``timeout_s``: a request whose expected
    wait, from the measured cost per text, is over its deadline is refused at once with :class:`BatcherBusy`).
    A request arriving at an idle batcher always runs. A request that is cancelled (its client left) or passes
    ``timeout_s`` (:class:`DeadlineExceeded`) is dropped from the queue without being encoded. When an encoder
    call fails, its requests are re-encoded one at a time so that only the request that fails gets the error.

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
        timeout_s: float | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.encode_fn = encode_fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.pending = 0
        self.stats = BatchStats()
        self.cost = CostEstimate()
        self.last_deadline_miss: float | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._carry: _Pending | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def expected_wait_s(self, extra_texts: int = 0) -> float:
        """Seconds until ``extra_texts`` more texts would be encoded, from the texts waiting and the cost per text."""
        return self.cost.seconds(self.pending + extra_texts, self.max_batch)

    def overloaded(self) -> bool:
        """Whether the queue is over its bounds: a new one-text request would be refused (too many texts waiting,
        or too long a wait), or a request missed its deadline within the last ``timeout_s`` seconds."""
        over_texts = self.max_pending is not None and self.pending >= self.max_pending
        over_time = self.timeout_s is not None and self.expected_wait_s(1) > self.timeout_s
        return (bool(self.pending) and (over_texts or over_time)) or self._missed_recently()

    def _missed_recently(self) -> bool:
        if self.last_deadline_miss is None or self.timeout_s is None:
            return False
        return asyncio.get_running_loop().time() - self.last_deadline_miss < self.timeout_s

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

    async def calibrate(self, texts: list[str], kind: str = "query") -> None:
        """Time one text and all ``texts`` (after warm-up), so the queue's time bound holds from the first request."""
        loop = asyncio.get_running_loop()
        for sample in (texts[:1], texts):
            started = loop.time()
            await self.run_in_worker(sample, kind)
            self.cost.update(loop.time() - started, len(sample))

    async def submit(
        self, texts: Sequence[str], kind: str, *, timeout_s: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode ``texts`` as ``kind``; returns ``(vectors, token_counts)`` for exactly these texts, in order.

        ``timeout_s`` (default: the batcher's) is what is left of this request's deadline. Raises
        :class:`BatcherBusy` at once when the queue is full or its expected wait is past the deadline, and
        :class:`DeadlineExceeded` once the deadline passes. Cancelling the call takes the request off the queue
        (it is not encoded unless its batch has already started).
        """
        if not self.running or self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called (or the batcher has stopped)")
        limit = self.timeout_s if timeout_s is None else timeout_s
        if limit is not None and limit <= 0:
            raise DeadlineExceeded("the request timeout passed before its texts could be queued; retry later")
        self._admit(len(texts), limit)
        future: asyncio.Future[tuple[np.ndarray, np.ndarray]] = asyncio.get_running_loop().create_future()
        self.pending += len(texts)
        try:
            await self._queue.put(_Pending(list(texts), kind, future))
            if limit is None:
                return await future
            try:  # on timeout wait_for cancels the future, so the worker skips the request
                return await asyncio.wait_for(future, limit)
            except TimeoutError:
                self.last_deadline_miss = asyncio.get_running_loop().time()
                self.stats.deadline_misses += 1
                raise DeadlineExceeded(
                    f"not encoded within the request timeout ({limit:.3g} s left); retry later"
                ) from None
        finally:
            self.pending -= len(texts)

    def _admit(self, n_texts: int, limit: float | None) -> None:
        """Refuse a request the queue cannot take: over ``max_pending`` texts, or an expected wait past ``limit``."""
        if not self.pending:
            return
        wait = self.expected_wait_s(n_texts)
        retry_after = max(1.0, self.expected_wait_s())
        if self.max_pending is not None and self.pending + n_texts > self.max_pending:
            raise BatcherBusy(
                f"{self.pending} texts are already waiting (limit {self.max_pending}); retry shortly",
                retry_after,
            )
        if limit is not None and wait > limit:
            raise BatcherBusy(
                f"{self.pending} texts are waiting; this request would be answered in about {wait:.1f} s, "
                f"past its deadline ({limit:.3g} s left of the request timeout); retry shortly",
                retry_after,
            )

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
            live = [
                item for item in batch if not item.future.done()
            ]  # the client left or the deadline passed
            self.stats.dropped += len(batch) - len(live)
            if live:
                await self._encode_batch(live)

    async def _encode_batch(self, batch: list[_Pending]) -> None:
        self.stats.record(len(batch), sum(len(item.texts) for item in batch))
        for kind in dict.fromkeys(item.kind for item in batch):  # one encoder call per kind, in arrival order
            await self._encode_group([item for item in batch if item.kind == kind], kind)

    async def _encode_group(self, group: list[_Pending], kind: str) -> None:
        """Encode the group's texts in one call; if that fails, one request at a time, so only a culprit fails."""
        try:
            vectors, tokens = await self._call_encoder([text for item in group for text in item.texts], kind)
        except Exception as exc:  # the worker keeps serving whatever the encoder raises
            if len(group) == 1:
                logger.warning("encoding a request of %d %s texts failed: %s", len(group[0].texts), kind, exc)
                if not group[0].future.done():
                    group[0].future.set_exception(exc)
                return
            logger.warning("a batch of %d requests failed (%s); encoding them one by one", len(group), exc)
            self.stats.isolated += 1
            for item in group:
                if not item.future.done():
                    await self._encode_group([item], kind)
            return
        start = 0
        for item in group:
            stop = start + len(item.texts)
            if not item.future.done():
                item.future.set_result((vectors[start:stop], tokens[start:stop]))
            start = stop

    async def _call_encoder(self, texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        """One encoder call in the worker thread, timed for the cost estimate and checked for its row count."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.stats.encoder_calls += 1
        vectors, tokens = await loop.run_in_executor(self._executor, self.encode_fn, texts, kind)
        self.cost.update(loop.time() - started, len(texts))
        if len(vectors) != len(texts) or len(tokens) != len(texts):
            raise RuntimeError(f"encoder returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors, tokens

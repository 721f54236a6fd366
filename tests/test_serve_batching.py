"""Micro-batching: concurrent requests share encoder calls, each gets its own rows back, limits hold."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from qadapter.serve import BatcherBusy, MicroBatcher  # needs no FastAPI


def counting_encode(calls: list[tuple[list[str], str]]):  # noqa: ANN201
    def encode(texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        calls.append((list(texts), kind))
        vectors = np.array([[float(t.split("-")[-1]), 1.0 if kind == "document" else 0.0] for t in texts])
        return vectors.astype(np.float32), np.ones(len(texts), dtype=np.int64)

    return encode


def test_batcher_merges_concurrent_requests_and_splits_results_back() -> None:
    calls: list[tuple[list[str], str]] = []

    async def scenario() -> list[tuple[np.ndarray, np.ndarray]]:
        batcher = MicroBatcher(counting_encode(calls), max_batch=100)
        await batcher.start()
        requests = [([f"q-{i}", f"q-{i + 100}"], "query") for i in range(5)] + [(["d-7"], "document")]
        results = await asyncio.gather(*(batcher.submit(texts, kind) for texts, kind in requests))
        await batcher.stop()
        assert batcher.stats.batches == 1 and batcher.stats.requests == 6 and batcher.stats.texts == 11
        return results

    results = asyncio.run(scenario())
    # one encoder call per kind for the whole batch, in arrival order
    assert [(len(texts), kind) for texts, kind in calls] == [(10, "query"), (1, "document")]
    for i, (vectors, tokens) in enumerate(results[:5]):
        np.testing.assert_array_equal(vectors[:, 0], [i, i + 100])
        np.testing.assert_array_equal(vectors[:, 1], [0, 0])
        assert tokens.tolist() == [1, 1]
    np.testing.assert_array_equal(results[5][0], [[7.0, 1.0]])


def test_batcher_respects_max_batch_and_runs_oversized_requests_alone() -> None:
    calls: list[tuple[list[str], str]] = []

    async def scenario() -> None:
        batcher = MicroBatcher(counting_encode(calls), max_batch=4)
        await batcher.start()
        sizes = [2, 2, 2, 9, 1]
        requests = [[f"t-{n}{j}" for j in range(n)] for n in sizes]
        results = await asyncio.gather(*(batcher.submit(texts, "query") for texts in requests))
        await batcher.stop()
        assert [len(vectors) for vectors, _ in results] == sizes

    asyncio.run(scenario())
    assert [len(texts) for texts, _ in calls] == [4, 2, 9, 1]


def test_batcher_wait_gathers_requests_that_arrive_a_little_later() -> None:
    calls: list[tuple[list[str], str]] = []

    async def scenario() -> None:
        batcher = MicroBatcher(counting_encode(calls), max_batch=10, max_wait_ms=300)
        await batcher.start()

        async def late(i: int) -> tuple[np.ndarray, np.ndarray]:
            await asyncio.sleep(0.02 * i)
            return await batcher.submit([f"q-{i}"], "query")

        await asyncio.gather(*(late(i) for i in range(3)))
        await batcher.stop()

    asyncio.run(scenario())
    assert [len(texts) for texts, _ in calls] == [3]


def test_batcher_fails_only_the_request_the_encoder_fails_on_and_keeps_serving() -> None:
    def encode(texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        if "boom" in texts:
            raise ValueError("bad text")
        return np.zeros((len(texts), 2), np.float32), np.ones(len(texts), np.int64)

    async def scenario() -> None:
        batcher = MicroBatcher(encode)
        with pytest.raises(RuntimeError, match="start"):
            await batcher.submit(["x"], "query")
        await batcher.start()
        outcomes = await asyncio.gather(
            batcher.submit(["boom"], "query"), batcher.submit(["fine"], "query"), return_exceptions=True
        )
        # the batch failed, so each request was re-encoded alone: only the culprit gets the error
        assert isinstance(outcomes[0], ValueError)
        assert not isinstance(outcomes[1], BaseException) and outcomes[1][0].shape == (1, 2)
        assert batcher.stats.isolated == 1
        vectors, _ = await batcher.submit(["fine"], "query")  # the worker survived
        assert vectors.shape == (1, 2)
        await batcher.stop()

    asyncio.run(scenario())


def test_batcher_refuses_work_past_max_pending_but_always_runs_on_an_idle_batcher() -> None:
    release = threading.Event()

    def slow_encode(texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        release.wait(10)
        return np.zeros((len(texts), 2), np.float32), np.ones(len(texts), np.int64)

    async def scenario() -> None:
        batcher = MicroBatcher(slow_encode, max_pending=3)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(["a", "b"], "query"))
        await asyncio.sleep(0.05)  # the first request is now inside the encoder
        with pytest.raises(BatcherBusy, match="2 texts are already waiting"):
            await batcher.submit(["c", "d"], "query")
        second = asyncio.ensure_future(batcher.submit(["c"], "query"))  # 2 + 1 <= 3 fits
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, second)
        assert batcher.pending == 0
        # larger than the limit, but nothing else waits
        vectors, _ = await batcher.submit(["x"] * 10, "query")
        assert len(vectors) == 10
        await batcher.stop()

    asyncio.run(scenario())


def test_batcher_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda texts, kind: (np.zeros(0), np.zeros(0)), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        MicroBatcher(lambda texts, kind: (np.zeros(0), np.zeros(0)), max_wait_ms=-1)

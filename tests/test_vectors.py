"""Blockwise exact search: same results as a full similarity matrix, memory bounded by the blocks."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from qadapter.core.vectors import normalize, rank_of_best, search, search_run


def _full_matrix_top(q: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = normalize(q) @ normalize(d).T
    order = np.lexsort((np.broadcast_to(np.arange(d.shape[0]), sims.shape), -sims), axis=1)[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize("device", [None, "cpu"])
@pytest.mark.parametrize(("q_block", "d_block"), [(7, 13), (1024, 16_384), (50, 1)])
def test_blockwise_search_matches_the_full_similarity_matrix(
    device: str | None, q_block: int, d_block: int
) -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(120, 16)).astype(np.float32)
    d = rng.normal(size=(301, 16)).astype(np.float32) * rng.uniform(0.5, 3, size=(301, 1)).astype(np.float32)
    idx, scores = search(q, d, k=10, batch_size=q_block, doc_batch_size=d_block, device=device)
    want_idx, want_scores = _full_matrix_top(q, d, 10)
    assert idx.shape == scores.shape == (120, 10)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_ties_are_ordered_by_row_and_k_is_capped_by_the_corpus() -> None:
    d = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    idx, scores = search(np.array([[1.0, 0.0]], dtype=np.float32), d, k=10, doc_batch_size=2)
    assert idx.tolist() == [[0, 1, 3, 2]]
    np.testing.assert_allclose(scores, [[1, 1, 1, 0]], atol=1e-6)
    empty, _ = search(np.zeros((0, 2), dtype=np.float32), d, k=3)
    assert empty.shape == (0, 3)


def test_search_never_allocates_queries_times_documents() -> None:
    """Issue 12: 512 queries x 40,000 documents would be 82 MB of similarities alone (plus partition indices twice
    that); the blocks bound it to a few MB."""
    rng = np.random.default_rng(1)
    q = rng.normal(size=(512, 8)).astype(np.float32)
    d = rng.normal(size=(40_000, 8)).astype(np.float32)
    tracemalloc.start()
    idx, _ = search(q, d, k=10, batch_size=256, doc_batch_size=2048)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    want, _ = _full_matrix_top(q[:20], d, 10)
    np.testing.assert_array_equal(idx[:20], want)


def test_search_run_names_documents() -> None:
    d = np.eye(3, dtype=np.float32)
    run = search_run(["q1"], np.array([[0.0, 1.0, 0.1]], dtype=np.float32), ["a", "b", "c"], d, k=2)
    assert list(run["q1"]) == ["b", "c"]


def test_rank_of_best_counts_the_documents_above_the_best_relevant_one() -> None:
    rng = np.random.default_rng(3)
    docs = rng.normal(size=(700, 24)).astype(np.float32) * rng.uniform(0.5, 2.0, size=(700, 1)).astype(
        np.float32
    )
    queries = rng.normal(size=(90, 24)).astype(np.float32)
    relevant = np.full((90, 3), -1, dtype=np.int64)
    for i in range(90):
        relevant[i, : 1 + i % 3] = rng.choice(700, 1 + i % 3, replace=False)
    relevant[7] = -1  # no relevant document: ranks last
    idx, _ = search(queries, docs, k=700)
    expected = np.array(
        [
            1 + min(list(idx[i]).index(d) for d in row if d >= 0) if (row >= 0).any() else 700
            for i, row in enumerate(relevant)
        ]
    )
    # small blocks, so that both loops run several times and the last blocks are partial
    got = rank_of_best(queries, docs, relevant, batch_size=16, doc_batch_size=128)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(rank_of_best(queries, docs, relevant), expected)


def test_log_ranks_is_minus_the_log_of_the_rank_of_the_best_relevant_document() -> None:
    from qadapter.train.validation import log_ranks

    rng = np.random.default_rng(4)
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    queries = docs[[3, 10, 20]] + 0.01 * rng.normal(size=(3, 8)).astype(np.float32)
    # each query is nearly its own document: rank 1 for that one; another document's rank is found by sorting
    sims = normalize(queries[2:]) @ normalize(docs).T
    other = int(np.argsort(-sims[0])[4])  # the fifth best for the third query
    values = log_ranks(queries, docs, [{3: 1}, {10: 2, 11: 1}, {other: 1}])
    np.testing.assert_allclose(values, [0.0, 0.0, -np.log(5.0)], atol=1e-12)

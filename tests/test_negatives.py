"""The negative plan: bounded memory, vectorised false-negative masks equal to the per-pair definition, memoised."""

from __future__ import annotations

import tracemalloc

import numpy as np

from qadapter.core.vectors import normalize
from qadapter.train import negatives
from qadapter.train.negatives import plan_negatives


def _reference_excluded(D: np.ndarray, pairs: np.ndarray, threshold: float) -> list[list[int]]:
    """The definition, one pair at a time: other positives of the query and near-duplicates of the positive."""
    columns = np.unique(pairs[:, 1])
    col_of = {int(r): i for i, r in enumerate(columns)}
    cand = normalize(D[columns])
    out = []
    for q, d in pairs:
        c = col_of[int(d)]
        others = {col_of[int(d2)] for q2, d2 in pairs if q2 == q} - {c}
        dups = {int(j) for j in np.flatnonzero(cand @ cand[c] >= threshold)} - {c}
        out.append(sorted(others | dups))
    return out


def test_vectorised_exclusions_match_the_per_pair_definition_across_blocks(monkeypatch) -> None:
    monkeypatch.setattr(negatives, "POS_BLOCK", 7)
    monkeypatch.setattr(negatives, "DOC_BLOCK", 11)
    rng = np.random.default_rng(0)
    D = rng.normal(size=(60, 8)).astype(np.float32)
    D[10:14] = D[3] + 0.01 * rng.normal(size=(4, 8))  # near-duplicates of document 3, in other blocks
    D[40] = D[25] * 2  # same direction, another norm
    Q = rng.normal(size=(30, 8)).astype(np.float32)
    pairs = np.array([(i, int(rng.integers(60))) for i in range(30)] + [(0, 3), (0, 25), (5, 40)])
    plan = plan_negatives(Q, D, pairs, false_negative_threshold=0.95)
    assert [e.tolist() for e in plan.excluded] == _reference_excluded(D, pairs, 0.95)


def test_plan_is_reused_for_the_same_inputs_and_remade_for_others() -> None:
    rng = np.random.default_rng(2)
    D = rng.normal(size=(50, 8)).astype(np.float32)
    Q = rng.normal(size=(20, 8)).astype(np.float32)
    pairs = [(i, i) for i in range(20)]
    first = plan_negatives(Q, D, pairs)
    assert plan_negatives(Q, D, list(pairs)) is first
    assert plan_negatives(Q, D, pairs, n_hard=4) is not first
    assert plan_negatives(Q.copy(), D, pairs) is not first
    assert plan_negatives(Q, D, pairs[:-1]) is not first


def test_near_duplicate_pass_is_not_quadratic_in_memory() -> None:
    """Issue 12: the pass held 1024 x (all training documents) similarities; 30,000 documents made that 123 MB
    (plus a boolean copy); streamed, it is bounded by the blocks whatever the number of documents."""
    rng = np.random.default_rng(3)
    n = 30_000
    D = rng.normal(size=(n, 8)).astype(np.float32)
    Q = D
    pairs = np.stack([np.arange(n), np.arange(n)], axis=1)
    tracemalloc.start()
    plan_negatives(Q, D, pairs, false_negative_threshold=0.9999, max_full=n + 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bound = (
        negatives.POS_BLOCK * negatives.DOC_BLOCK * 5 + 400 * n
    )  # one block of float32 + bool, O(n) arrays
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB"


def test_hard_negatives_come_from_the_ranking_without_positives() -> None:
    rng = np.random.default_rng(4)
    D = rng.normal(size=(80, 8)).astype(np.float32)
    Q = D[:40] + 0.05 * rng.normal(size=(40, 8)).astype(np.float32)
    pairs = [(i, i) for i in range(40)] + [(i, i + 40) for i in range(40)]
    plan = plan_negatives(Q, D, pairs, max_full=10, n_hard=6)
    assert plan.hard is not None and plan.hard.shape == (40, 6)
    columns = plan.columns.tolist()
    for q in range(40):
        positives = {columns.index(q), columns.index(q + 40)}
        assert not positives & set(plan.hard[q].tolist())
        ranked = np.argsort(-(normalize(D[plan.columns]) @ normalize(Q[q : q + 1]).T).ravel(), kind="stable")
        assert plan.hard[q].tolist() == [c for c in ranked.tolist() if c not in positives][:6]

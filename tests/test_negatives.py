"""The negative plan: bounded memory, vectorised false-negative masks equal to the per-pair definition, memoised."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

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


def test_sampled_hard_negatives_skip_near_duplicates_of_the_positive() -> None:
    rng = np.random.default_rng(5)
    D = normalize(rng.normal(size=(40, 8)))
    D[1] = normalize(D[0] + 0.001 * rng.normal(size=8))  # a near-duplicate chunk of document 0
    Q = normalize(D[:20] + 0.05 * rng.normal(size=(20, 8)))
    pairs = [(i, i) for i in range(20)] + [(i, 20 + i) for i in range(1, 20)]
    plan = plan_negatives(Q, D, pairs, max_full=10, n_hard=4, false_negative_threshold=0.98)
    assert not plan.full and plan.hard is not None
    # query 0 ranks document 1 (its positive's duplicate) near the top, but never gets it as a negative
    ranked = np.argsort(-(D @ Q[0])).tolist()
    assert ranked.index(1) < 4
    hard_rows = plan.columns[plan.hard[0]].tolist()
    assert 1 not in hard_rows and 0 not in hard_rows
    assert (
        hard_rows == [r for r in ranked if r not in (0, 1, 20)][:4]
    )  # (document 20 has no query: no column)


def test_sampled_contrastive_step_is_the_softmax_over_shared_columns_and_own_hard_negatives() -> None:
    """The sampled loss, checked against a per-query reference: the batch's positives and random columns shared by
    every query, then each query's own hard negatives; near-duplicates of the positive, the query's other positives
    and hard negatives already among the shared columns never count."""
    import torch

    from qadapter.train.config import TrainConfig
    from qadapter.train.losses import LOSSES, BatchInputs

    rng = np.random.default_rng(6)
    D = normalize(rng.normal(size=(30, 8)))
    D[5] = normalize(D[4] + 0.001 * rng.normal(size=8))  # near-duplicate of document 4
    Q = normalize(rng.normal(size=(12, 8)))
    pairs = [(i, i) for i in range(12)] + [(0, 20)]
    plan = plan_negatives(Q, D, pairs, max_full=5, n_hard=3, false_negative_threshold=0.98)
    config = TrainConfig(temperature=0.1, label_smoothing=0.0, random_negatives=4)
    docs = torch.from_numpy(D[plan.columns])
    batch = np.array([0, 4, 7, 12])
    adapted = torch.from_numpy(Q[plan.pair_query[batch]])
    loss = LOSSES["contrastive"].step(
        BatchInputs(docs, plan.pair_pos_col, plan, None, config, np.random.default_rng(1)), batch, adapted
    )

    extra = np.random.default_rng(1).integers(len(plan.columns), size=4)
    unit = normalize(D[plan.columns])
    expected = []
    for pair in batch:
        q, pos = plan.pair_query[pair], plan.pair_pos_col[pair]
        others = {plan.pair_pos_col[i] for i in range(len(pairs)) if plan.pair_query[i] == q} - {pos}
        shared = np.unique(np.concatenate([plan.pair_pos_col[batch], extra]))
        candidates = [c for c in shared if c == pos or (c not in others and unit[c] @ unit[pos] < 0.98)]
        candidates += [c for c in plan.hard[q] if c not in others and c != pos and c not in shared]
        logits = np.array([Q[q] @ unit[c] for c in candidates]) / 0.1
        expected.append(np.log(np.exp(logits).sum()) - logits[candidates.index(pos)])
    assert float(loss) == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_hard_negatives_mined_in_torch_on_a_device_match_the_numpy_search(monkeypatch) -> None:
    """``device`` (the training device) runs the exact mining search in torch there: same plan as numpy's. On this
    CPU-only machine the torch path runs on ``cpu``; the trainer passes ``cuda`` on a GPU."""
    from qadapter.core import vectors

    calls: list[str | None] = []
    torch_search = vectors._search_torch

    def spy(*args, **kwargs):
        calls.append(args[-1])
        return torch_search(*args, **kwargs)

    monkeypatch.setattr(vectors, "_search_torch", spy)
    rng = np.random.default_rng(7)
    D = rng.normal(size=(300, 16)).astype(np.float32)
    Q = D[:120] + 0.3 * rng.normal(size=(120, 16)).astype(np.float32)
    pairs = [(i, i) for i in range(120)]
    numpy_plan = plan_negatives(Q, D, pairs, max_full=10, n_hard=8)
    assert calls == []
    torch_plan = plan_negatives(
        Q.copy(), D, pairs, max_full=10, n_hard=8, device="cpu"
    )  # a copy: not the memo
    assert calls == ["cpu"]
    assert numpy_plan.hard is not None and torch_plan.hard is not None
    np.testing.assert_array_equal(torch_plan.hard, numpy_plan.hard)

"""Trainer structure and cost: the loss registry, devices, threads, a pair budget per epoch, validation on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qadapter.errors import QadapterError
from qadapter.train import losses, trainer
from qadapter.train.config import TrainConfig
from qadapter.train.trainer import fit
from qadapter.train.validation import RowQueries, metrics_of_ranking, per_query


def _planted(
    n: int = 300, dim: int = 16, seed: int = 0, theta: float = 1.2
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Queries = documents rotated by ``theta`` radians in random planes, plus noise."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(n, dim)).astype(np.float32)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    J = basis @ np.kron(np.eye(dim // 2), [[0.0, -1.0], [1.0, 0.0]]) @ basis.T
    R = (np.cos(theta) * np.eye(dim) + np.sin(theta) * J).astype(np.float32)
    Q = D @ R.T + 0.1 * rng.normal(size=(n, dim)).astype(np.float32)
    return Q, D, [(i, i) for i in range(n)]


def test_every_config_loss_has_a_registered_step() -> None:
    assert set(losses.LOSSES) == {"contrastive", "triplet"}
    for spec in losses.LOSSES.values():
        assert callable(spec.step)


def test_the_trainer_reads_the_loss_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a loss is a prepare and a finish function + one entry: the trainer calls whatever the registry names."""
    seen: list[int] = []

    def positives(inputs: losses.BatchInputs, batch: np.ndarray) -> torch.Tensor:
        seen.append(len(batch))
        return inputs.docs[inputs.tensor(inputs.pair_pos_col[batch])]

    def pull_to_positive(
        inputs: losses.BatchInputs, positive: torch.Tensor, adapted: torch.Tensor
    ) -> torch.Tensor:
        return (adapted - positive).pow(2).sum(-1).mean()

    spec = losses.LossSpec(positives, pull_to_positive, needs_plan=False)
    monkeypatch.setitem(losses.LOSSES, "triplet", spec)
    Q, D, pairs = _planted()
    result = fit(Q, D, pairs, TrainConfig(loss="triplet", negatives="pool", epochs=2), negative_pool=D[:5])
    assert sum(seen) == 2 * len(pairs)
    assert result.history.train_loss[-1] < result.history.train_loss[0]


def test_pairs_per_epoch_are_sampled_and_reported() -> None:
    Q, D, pairs = _planted()
    full = fit(Q, D, pairs, TrainConfig(epochs=2))
    assert (full.n_pairs, full.pairs_per_epoch) == (300, 300)
    assert full.pairs_drawn_from == 300
    sampled = fit(Q, D, pairs, TrainConfig(epochs=2, max_pairs_per_epoch=64))
    assert (sampled.n_pairs, sampled.pairs_per_epoch) == (300, 64)
    # 2 epochs of 64 can never reach all 300 pairs: they are drawn from a fixed sample of 128 (mined once)
    assert sampled.pairs_drawn_from == 128
    with pytest.raises(QadapterError, match="max_pairs_per_epoch"):
        fit(Q, D, pairs, TrainConfig(max_pairs_per_epoch=-1))


def test_sampled_epochs_still_recover_the_planted_map() -> None:
    Q, D, pairs = _planted(n=600)
    result = fit(Q, D, pairs, TrainConfig(epochs=15, max_pairs_per_epoch=200))
    rels = [{i: 1} for i in range(600)]
    base = per_query(Q, D, rels, ["hit@1"])["hit@1"].mean()
    adapted = per_query(result.adapter.transform(Q), D, rels, ["hit@1"])["hit@1"].mean()
    assert adapted > base + 0.4, (base, adapted)


def test_device_is_resolved_and_an_unavailable_one_is_refused() -> None:
    Q, D, pairs = _planted(n=64)
    assert fit(Q, D, pairs, TrainConfig(epochs=1), device="cpu").device == "cpu"
    assert fit(Q, D, pairs, TrainConfig(epochs=1, device="cpu")).device == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(QadapterError, match="cuda"):
            fit(Q, D, pairs, TrainConfig(epochs=1), device="cuda")
    with pytest.raises(QadapterError, match="valid devices"):
        fit(Q, D, pairs, TrainConfig(epochs=1, device="tpu"))


def test_one_thread_for_small_problems_all_for_big_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer, "cpu_threads", lambda: 8)
    config = TrainConfig()
    small = np.zeros((1000, 384), dtype=np.float32)
    pairs_small = np.stack([np.arange(300), np.arange(300)], axis=1)
    assert trainer._threads_for(config, small, pairs_small, "cpu") == 1
    pairs_big = np.stack([np.arange(20_000), np.arange(20_000)], axis=1)
    big = np.zeros((20_000, 384), dtype=np.float32)
    assert trainer._threads_for(config, big, pairs_big, "cpu") == 8
    monkeypatch.setattr(trainer, "cpu_threads", lambda: 2)  # few shared cores: threads wait for each other
    assert trainer._threads_for(config, big, pairs_big, "cpu") == 1


def test_validation_on_the_device_matches_the_numpy_metrics() -> None:
    Q, D, pairs = _planted(n=400)
    rels = [{i: 1} for i in range(300, 400)]
    val = {"a": RowQueries(Q[300:350], rels[:50]), "b": RowQueries(Q[350:], rels[50:])}
    result = fit(Q[:300], D, pairs[:300], TrainConfig(epochs=3), val=val, monitor_only=True)
    adapted = result.adapter.transform
    for name, part in val.items():
        want = per_query(adapted(part.embeddings), D, part.rels, ["mrr@10"])["mrr@10"].mean()
        assert result.history.val_parts[name][-1] == pytest.approx(want, abs=1e-9)


def test_validation_samples_large_parts_with_a_fixed_seed() -> None:
    Q, D, pairs = _planted(n=400)
    val = {"a": RowQueries(Q[200:], [{i: 1} for i in range(200, 400)])}
    config = TrainConfig(epochs=2, max_val_queries=50)
    first = fit(Q[:200], D, pairs[:200], config, val=val, monitor_only=True).history.val
    again = fit(Q[:200], D, pairs[:200], config, val=val, monitor_only=True).history.val
    assert first == again
    validator = trainer._Validator(val, D, config, None, "cpu")
    assert len(validator.parts["a"][0]) == 50


def test_approximate_rankings_padded_with_minus_one_never_count_as_hits() -> None:
    rows = np.array([[3, -1]]), np.array([[1.0, 0.0]])
    ranking = np.array([[-1, -1, 3]])
    out = metrics_of_ranking(ranking, rows, ["hit@2", "mrr@3"])
    assert out["hit@2"].tolist() == [0.0] and out["mrr@3"].tolist() == [pytest.approx(1 / 3)]


@pytest.mark.parametrize("max_full", [4096, 50])
def test_configs_trained_together_match_separate_fits(max_full: int) -> None:
    """The default search's candidates share batches and negatives: each comes out as its own fit would (full
    softmax, and the sampled mode with hard negatives), with the work that does not depend on the adapter paid once."""
    from qadapter.train.trainer import FitOptions, can_train_together, fit_together

    Q, D, pairs = _planted(n=200)
    base = TrainConfig(epochs=3, max_full_negatives=max_full, hard_negatives=4, random_negatives=16)
    configs = [base, base.replace(identity_reg=1.0), base.replace(kind="mlp", hidden=16)]
    val = {"val": RowQueries(Q[:40], [{i: 1} for i in range(40)])}
    options = FitOptions(val=val, monitor_only=True)
    together = fit_together(Q, D, pairs, configs, options)
    for config, joint in zip(configs, together, strict=True):
        alone = fit(Q, D, pairs, config, val=val, monitor_only=True)
        for name, tensor in alone.adapter.tensors.items():
            np.testing.assert_allclose(joint.adapter.tensors[name], tensor, atol=1e-5)
        assert joint.history.val == pytest.approx(alone.history.val)
        assert joint.adapter.config["training"]["kind"] == config.kind
    assert not can_train_together([base, base.replace(lr=1e-3)])
    with pytest.raises(ValueError, match="may differ only in"):
        fit_together(Q, D, pairs, [base, base.replace(temperature=0.1)])


@pytest.mark.parametrize("compute_dtype", ["bfloat16", "float16"])
def test_a_reduced_compute_dtype_trains_in_it_and_recovers_the_planted_map_as_float32_does(
    compute_dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Autocast: the loss's matrix products really run in the reduced dtype, the adapter stays float32, and the planted
    map is recovered as well as in float32 (hit@1 on the training queries within 0.05; measured on real data in
    benchmarks/results/precision.md)."""
    Q, D, pairs = _planted(n=400)
    rels = [{i: 1} for i in range(400)]
    config = TrainConfig(epochs=20)
    full = fit(Q, D, pairs, config, device="cpu")
    seen: list[torch.dtype] = []
    softmax_loss = losses.softmax_loss

    def spy(logits: torch.Tensor, *args: object) -> torch.Tensor:
        seen.append(logits.dtype)
        return softmax_loss(logits, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(losses, "softmax_loss", spy)
    reduced = fit(Q, D, pairs, config.replace(compute_dtype=compute_dtype), device="cpu")
    assert set(seen) == {getattr(torch, compute_dtype)}
    assert all(t.dtype == np.float32 for t in reduced.adapter.tensors.values())
    assert reduced.adapter.config["training"]["compute_dtype"] == compute_dtype
    base = per_query(Q, D, rels, ["hit@1"])["hit@1"].mean()
    hit = {
        name: per_query(r.adapter.transform(Q), D, rels, ["hit@1"])["hit@1"].mean()
        for name, r in (("float32", full), (compute_dtype, reduced))
    }
    assert hit["float32"] > base + 0.4, (base, hit)
    assert abs(hit[compute_dtype] - hit["float32"]) < 0.05, hit


def test_an_unknown_compute_dtype_names_the_valid_ones() -> None:
    with pytest.raises(QadapterError, match="compute_dtype must be one of float32, float16, bfloat16"):
        TrainConfig(compute_dtype="fp8")

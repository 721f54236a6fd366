"""Fit one adapter on cached embeddings: no text is encoded here, so an epoch takes milliseconds to seconds."""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from qadapter.adapters import Adapter
from qadapter.errors import QadapterError
from qadapter.train.config import History, TrainConfig
from qadapter.train.losses import contrastive_loss, identity_penalty, triplet_loss
from qadapter.train.modules import build_module, to_adapter
from qadapter.train.negatives import excluded_pairs, plan_negatives
from qadapter.train.validation import RowQueries, per_query

logger = logging.getLogger(__name__)

#: small training sets get smaller batches so that one epoch is at least this many optimiser steps
MIN_STEPS_PER_EPOCH = 16


@dataclass
class FitResult:
    adapter: Adapter
    history: History
    best_epoch: int
    best_val: float | None


def _schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up for ``warmup`` steps (at most a tenth of the run, so short runs on small data still train),
    then linear decay to zero at ``total`` steps."""
    warmup = min(warmup, total // 10)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    config: TrainConfig | None = None,
    *,
    val: Mapping[str, RowQueries] | None = None,
    negative_pool: np.ndarray | None = None,
    epochs: int | None = None,
    weights: Mapping[str, float] | None = None,
    monitor_only: bool = False,
    progress: bool = False,
) -> FitResult:
    """Train ``config.kind`` on (query row, document row) ``pairs``.

    With ``val``, the validation metric (mean over the given parts, or weighted by ``weights`` by part name; parts it
    leaves out weigh 0) is computed after every epoch; the best epoch's weights are kept and training stops after
    ``config.patience`` epochs without improvement. With ``monitor_only`` the metric is only recorded (history) and the
    whole schedule runs. ``epochs`` stops training early while keeping the learning-rate schedule of
    ``config.epochs``.
    """
    config = config or TrainConfig()
    with _torch_threads(1):
        return _fit(
            query_embeddings,
            doc_embeddings,
            pairs,
            config,
            val,
            negative_pool,
            epochs,
            weights,
            monitor_only,
            progress,
        )


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Adapters are small: one thread avoids the oversubscription that made training several times slower on 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    config: TrainConfig,
    val: Mapping[str, RowQueries] | None,
    negative_pool: np.ndarray | None,
    epochs: int | None,
    weights: Mapping[str, float] | None,
    monitor_only: bool,
    progress: bool,
) -> FitResult:
    if not len(pairs):
        raise QadapterError(
            "no training pairs: the training split has no (query, relevant document) judgements"
        )
    if config.negatives == "pool" and (negative_pool is None or len(negative_pool) == 0):
        raise QadapterError(
            "negatives='pool' needs a negative pool (e.g. an out-of-domain document's chunks)"
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    n_epochs = min(epochs or config.epochs, config.epochs)
    dim = int(doc_embeddings.shape[1])
    if query_embeddings.shape[1] != dim:
        raise QadapterError(f"query embeddings have dimension {query_embeddings.shape[1]}, documents {dim}")

    Q = torch.from_numpy(np.ascontiguousarray(query_embeddings, dtype=np.float32))
    module = build_module(config.kind, dim, hidden=config.hidden, init=config.init)
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
    )
    n_pairs = len(pairs)
    batch_size = min(config.batch_size, max(16, -(-n_pairs // MIN_STEPS_PER_EPOCH)))
    steps_per_epoch = (n_pairs + batch_size - 1) // batch_size
    scheduler = _schedule(optimizer, config.warmup_steps, steps_per_epoch * config.epochs)

    plan = None
    if config.loss == "contrastive" or config.negatives == "corpus":
        plan = plan_negatives(
            query_embeddings,
            doc_embeddings,
            pairs,
            max_full=config.max_full_negatives,
            n_hard=config.hard_negatives,
            false_negative_threshold=config.false_negative_threshold,
        )
        C = torch.from_numpy(np.ascontiguousarray(doc_embeddings[plan.columns], dtype=np.float32))
        pair_q, pair_c = plan.pair_query, plan.pair_pos_col
    else:
        arr = np.asarray(pairs, dtype=np.int64)
        pair_q, pair_c = arr[:, 0], arr[:, 1]
        C = torch.from_numpy(np.ascontiguousarray(doc_embeddings, dtype=np.float32))
    pool = (
        torch.from_numpy(np.ascontiguousarray(negative_pool, dtype=np.float32))
        if negative_pool is not None
        else None
    )

    history = History(val_metric=config.val_metric)
    best_state, best_val, best_epoch, stale = copy.deepcopy(module.state_dict()), -np.inf, 0, 0

    def val_score() -> float:
        assert val is not None
        module.eval()

        def transform(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

        per_part = {
            name: per_query(transform(part.embeddings), doc_embeddings, part.rels, [config.val_metric])[
                config.val_metric
            ]
            for name, part in val.items()
        }
        parts = {name: float(v.mean()) for name, v in per_part.items()}
        for name, value in parts.items():
            history.val_parts.setdefault(name, []).append(value)
        module.train()
        if weights is None:
            return float(np.mean(list(parts.values())))
        total = sum(weights.get(k, 0.0) for k in parts)
        return float(sum(weights.get(k, 0.0) * v for k, v in parts.items()) / total) if total > 0 else 0.0

    if val:
        best_val = val_score()  # epoch 0: the starting point (the identity, for identity init)
        history.epochs.append(0)
        history.train_loss.append(float("nan"))
        history.val.append(best_val)

    from tqdm.auto import tqdm

    bar = tqdm(range(1, n_epochs + 1), desc=f"training {config.kind}", unit="epoch", disable=not progress)
    module.train()
    for epoch in bar:
        order = rng.permutation(n_pairs)
        total = 0.0
        for start in range(0, n_pairs, batch_size):
            batch = order[start : start + batch_size]
            q_rows = torch.from_numpy(pair_q[batch])
            original = Q[q_rows]
            if config.input_noise > 0:
                original = original + config.input_noise * torch.randn_like(original)
            adapted = module(original)
            if config.loss == "contrastive":
                assert plan is not None
                loss = _contrastive_batch(plan, batch, adapted, C, config, rng)
            else:
                positive = C[torch.from_numpy(pair_c[batch])]
                if config.negatives == "pool":
                    assert pool is not None
                    negative = pool[torch.from_numpy(rng.integers(len(pool), size=len(batch)))]
                else:
                    negative = C[torch.from_numpy(_random_negatives(plan, batch, rng))]
                loss = triplet_loss(adapted, positive, negative, config.margin)
            if config.identity_reg > 0:
                loss = loss + config.identity_reg * identity_penalty(adapted, original)
            optimizer.zero_grad()
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip, foreach=True)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(batch)
        history.epochs.append(epoch)
        history.train_loss.append(total / n_pairs)
        if val:
            current = val_score()
            history.val.append(current)
            bar.set_postfix({config.val_metric: f"{current:.4f}"})
            if monitor_only:
                best_val, best_epoch = current, epoch
            elif current > best_val + 1e-6:
                best_val, best_epoch, stale = current, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
                if config.patience and stale >= config.patience:
                    logger.info("early stop at epoch %d (best %d: %.4f)", epoch, best_epoch, best_val)
                    break
    bar.close()
    if val and not monitor_only:
        module.load_state_dict(best_state)
    else:
        best_epoch = history.epochs[-1]
    history.best_epoch = best_epoch
    module.eval()
    adapter = to_adapter(module, config.kind, dim, {"training": config.to_dict()})
    return FitResult(adapter, history, best_epoch, None if not val else float(best_val))


def _random_negatives(plan: object, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random training-document column per pair that is not its positive (triplet loss, corpus negatives)."""
    n_cols = len(plan.columns)  # type: ignore[attr-defined]
    pos = plan.pair_pos_col[batch]  # type: ignore[attr-defined]
    picks = rng.integers(n_cols, size=len(batch))
    clash = picks == pos
    picks[clash] = (picks[clash] + 1) % max(n_cols, 1)
    return picks


def _contrastive_batch(
    plan: object,
    batch: np.ndarray,
    adapted: torch.Tensor,
    C: torch.Tensor,
    config: TrainConfig,
    rng: np.random.Generator,
) -> torch.Tensor:
    pos_cols = plan.pair_pos_col[batch]  # type: ignore[attr-defined]
    if plan.full:  # type: ignore[attr-defined]
        cols = np.arange(C.shape[0])
        target = pos_cols
    else:
        q_rows = plan.pair_query[batch]  # type: ignore[attr-defined]
        extra = rng.integers(C.shape[0], size=config.random_negatives)
        cols = np.unique(np.concatenate([pos_cols, plan.hard[q_rows].ravel(), extra]))  # type: ignore[attr-defined]
        target = np.searchsorted(cols, pos_cols)
    mask = np.zeros((len(batch), len(cols)), dtype=bool)
    rows, excl = excluded_pairs(plan, batch)  # type: ignore[arg-type]
    if len(excl):
        if plan.full:  # type: ignore[attr-defined]
            mask[rows, excl] = True
        else:
            where = np.searchsorted(cols, excl)
            ok = (where < len(cols)) & (cols[np.minimum(where, len(cols) - 1)] == excl)
            mask[rows[ok], where[ok]] = True
    docs = C if plan.full else C[torch.from_numpy(cols)]  # type: ignore[attr-defined]
    loss = contrastive_loss(
        adapted,
        docs,
        torch.from_numpy(target),
        torch.from_numpy(mask),
        config.temperature,
        config.label_smoothing,
    )
    if config.symmetric > 0:
        positives = docs[torch.from_numpy(target)]
        same_doc = torch.from_numpy(pos_cols[:, None] == pos_cols[None, :])
        same_doc.fill_diagonal_(False)
        reverse = contrastive_loss(positives, adapted, torch.arange(len(batch)), same_doc, config.temperature)
        loss = loss + config.symmetric * reverse
    return loss

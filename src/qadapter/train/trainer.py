"""Fit one adapter on cached embeddings: no text is encoded here, so an epoch takes milliseconds to seconds.

One fit is a few named steps: check the inputs, plan the negatives (:mod:`qadapter.train.negatives`, memoised, so the
candidates of one search share it), put the tensors on the device, then per epoch sample pairs, run the batches
through the loss of :data:`qadapter.train.losses.LOSSES`, and validate (:class:`_Validator`, on the device).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from qadapter.adapters import Adapter
from qadapter.core.ann import MINE_ANN_ABOVE, MINE_NPROBE, use_ann
from qadapter.core.device import cpu_threads, resolve_device
from qadapter.core.progress import progress as progress_bar
from qadapter.errors import QadapterError
from qadapter.train.config import History, TrainConfig
from qadapter.train.losses import LOSSES, BatchInputs, identity_penalty
from qadapter.train.modules import build_module, to_adapter
from qadapter.train.negatives import NegativePlan, plan_negatives
from qadapter.train.validation import RowQueries, metric_depth, metrics_of_ranking

logger = logging.getLogger(__name__)

#: small training sets get smaller batches so that one epoch is at least this many optimiser steps
MIN_STEPS_PER_EPOCH = 16
#: multiply-adds of one step's logits (batch x candidates x dim) above which torch gets all CPU threads, on machines
#: with at least MANY_THREADS_MIN_CORES cores; otherwise one thread (on 2 shared cores two torch threads made a 2,000
#: document fit 4.6x slower in wall time than its CPU time under load: spinning threads that wait for each other)
MANY_THREADS_ABOVE = 50_000_000
#: validation queries per part scored after each epoch above MINE_ANN_ABOVE documents (the curve is approximate there;
#: what picks the winner of a search is the selection's judgement, on whole validation parts)
MONITOR_QUERIES_LARGE = 500
MANY_THREADS_MIN_CORES = 4


@dataclass
class FitResult:
    adapter: Adapter
    history: History
    best_epoch: int
    best_val: float | None
    #: training pairs given, and how many of them each epoch used (fewer when ``max_pairs_per_epoch`` sampled them)
    n_pairs: int = 0
    pairs_per_epoch: int = 0
    device: str = "cpu"
    #: the pairs epochs were drawn from: all of them, or a fixed sample (see :func:`budget_pairs`)
    pairs_drawn_from: int = 0


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
    device: str | None = None,
    plan: NegativePlan | None = None,
) -> FitResult:
    """Train ``config.kind`` on (query row, document row) ``pairs``.

    With ``val``, the validation metric (mean over the given parts, or weighted by ``weights`` by part name; parts it
    leaves out weigh 0) is computed after every epoch; the best epoch's weights are kept and training stops after
    ``config.patience`` epochs without improvement. With ``monitor_only`` the metric is only recorded (history) and the
    whole schedule runs. ``epochs`` stops training early while keeping the learning-rate schedule of
    ``config.epochs``. ``device`` overrides ``config.device``; ``plan`` is a negative plan already made for these
    inputs (otherwise :func:`plan_negatives` makes or reuses one).
    """
    options = FitOptions(val, negative_pool, epochs, weights, monitor_only, progress, device, plan)
    return fit_together(query_embeddings, doc_embeddings, pairs, [config or TrainConfig()], options)[0]


#: what may differ between configs trained together: what the adapter is, not how batches are made
MEMBER_FIELDS = ("kind", "hidden", "init", "identity_reg")


@dataclass
class FitOptions:
    """The keyword options of :func:`fit`, shared by every config of :func:`fit_together`."""

    val: Mapping[str, RowQueries] | None = None
    negative_pool: np.ndarray | None = None
    epochs: int | None = None
    weights: Mapping[str, float] | None = None
    monitor_only: bool = False
    progress: bool = False
    device: str | None = None
    plan: NegativePlan | None = None


def can_train_together(configs: Sequence[TrainConfig]) -> bool:
    """Whether ``configs`` differ only in :data:`MEMBER_FIELDS` (so they can share batches and negatives)."""
    first = configs[0]
    same = {name: getattr(first, name) for name in MEMBER_FIELDS}
    return all(c.replace(**same) == first for c in configs[1:])


def fit_together(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    configs: Sequence[TrainConfig],
    options: FitOptions | None = None,
) -> list[FitResult]:
    """Train several configs that differ only in :data:`MEMBER_FIELDS` on the same batches: each step's negatives,
    masks and gathered documents are prepared once and every adapter takes its own optimiser step on them. Each
    result is the one :func:`fit` gives for that config alone with the same seed (the batches, random negatives and
    initialisation are drawn in the same order); the work that does not depend on the adapter is paid once."""
    options = options or FitOptions()
    if not configs or not can_train_together(configs):
        raise ValueError(f"configs trained together may differ only in {', '.join(MEMBER_FIELDS)}")
    config = configs[0]
    pairs_arr = _check_inputs(query_embeddings, doc_embeddings, pairs, config, options.negative_pool)
    target = resolve_device(options.device or config.device)
    columns = np.unique(pairs_arr[:, 1])
    used = budget_pairs(pairs_arr, config)
    with _torch_threads(_threads_for(config, doc_embeddings, columns, target)):
        trainer = _Trainer(
            query_embeddings,
            doc_embeddings,
            used,
            configs,
            options.negative_pool,
            target,
            (options.plan, columns),
        )
        validator = (
            _Validator(options.val, doc_embeddings, config, options.weights, target) if options.val else None
        )
        results = trainer.run(options.epochs, validator, options.monitor_only, options.progress)
    for result in results:
        result.n_pairs, result.pairs_drawn_from = len(pairs_arr), len(used)
    return results


def budget_pairs(pairs: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The pairs a fit draws its epochs from: all of them, or a fixed random sample of ``max_training_pairs`` (fewer
    when ``epochs x max_pairs_per_epoch`` draws could not reach that many), so that neither mining negatives nor the
    fit grows with the training set."""
    limits = [b for b in (config.max_training_pairs, config.max_pairs_per_epoch * config.epochs) if b]
    if not limits or len(pairs) <= min(limits):
        return pairs
    budget = min(limits)
    keep = np.sort(np.random.default_rng(config.seed).choice(len(pairs), size=budget, replace=False))
    logger.info("%d training pairs: the fit draws from a sample of %d", len(pairs), budget)
    return pairs[keep]


def _check_inputs(
    Q: np.ndarray,
    D: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    config: TrainConfig,
    pool: np.ndarray | None,
) -> np.ndarray:
    if not len(pairs):
        raise QadapterError(
            "no training pairs: the training split has no (query, relevant document) judgements"
        )
    if config.negatives == "pool" and (pool is None or len(pool) == 0):
        raise QadapterError(
            "negatives='pool' needs a negative pool (e.g. an out-of-domain document's chunks)"
        )
    if Q.shape[1] != D.shape[1]:
        raise QadapterError(f"query embeddings have dimension {Q.shape[1]}, documents {D.shape[1]}")
    if config.loss not in LOSSES:
        raise QadapterError(f"unknown loss '{config.loss}'; valid losses: {', '.join(LOSSES)}")
    if min(config.max_pairs_per_epoch, config.max_val_queries, config.max_training_pairs) < 0:
        raise QadapterError(
            "max_pairs_per_epoch, max_training_pairs and max_val_queries must be >= 0 (0 = all)"
        )
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _threads_for(config: TrainConfig, D: np.ndarray, columns: np.ndarray, device: str) -> int:
    """One torch thread for small problems (measured faster on 2 shared cores), all of them for big matmuls."""
    if device != "cpu":
        return torch.get_num_threads()
    n_cols = len(columns)
    if n_cols > config.max_full_negatives:
        n_cols = config.batch_size + config.hard_negatives + config.random_negatives
    work = config.batch_size * n_cols * D.shape[1]
    cores = cpu_threads()
    return cores if work > MANY_THREADS_ABOVE and cores >= MANY_THREADS_MIN_CORES else 1


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _unit_rows(D: np.ndarray, rows: np.ndarray, block: int = 65_536) -> np.ndarray:
    """``normalize(D[rows])`` as one float32 array, filled block by block (no second full-size temporary)."""
    from qadapter.core.vectors import normalize

    out = np.empty((len(rows), D.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), block):
        out[start : start + block] = normalize(D[rows[start : start + block]])
    return out


def _device_type(device: str) -> str:
    """``cuda:1`` -> ``cuda``: the device type autocast and the gradient scaler take."""
    return device.split(":", 1)[0]


def _autocast(device: str, compute_dtype: str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass and loss in ``compute_dtype`` (:data:`TrainConfig.compute_dtype`); float32 = no autocast."""
    if compute_dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(_device_type(device), dtype=getattr(torch, compute_dtype))


def _to(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


class _Member:
    """One adapter of a fit: its module, optimiser, schedule, early-stopping tracker and history."""

    def __init__(self, config: TrainConfig, dim: int, device: str, steps: int, monitor_only: bool) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.module = build_module(config.kind, dim, hidden=config.hidden, init=config.init).to(device)
        self.optimizer = torch.optim.AdamW(
            self.module.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none
        self.scaler = torch.amp.GradScaler(
            _device_type(device), init_scale=1024.0, enabled=config.compute_dtype == "float16"
        )
        self.scheduler = _schedule(self.optimizer, config.warmup_steps, steps)
        self.tracker = _Tracker(self.module, monitor_only, config.patience)
        self.history = History(val_metric=config.val_metric)
        self.active, self.loss_sum = True, 0.0

    def step(self, loss: torch.Tensor, original: torch.Tensor, adapted: torch.Tensor) -> float:
        if self.config.identity_reg > 0:
            loss = loss + self.config.identity_reg * identity_penalty(adapted, original)
        self.optimizer.zero_grad()
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.config.grad_clip, foreach=True)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())


class _Trainer:
    """The device tensors, batches and negatives of one fit, shared by its members (one per config)."""

    def __init__(
        self,
        Q: np.ndarray,
        D: np.ndarray,
        pairs: np.ndarray,
        configs: Sequence[TrainConfig],
        pool: np.ndarray | None,
        device: str,
        plan: tuple[NegativePlan | None, np.ndarray],
    ) -> None:
        config = configs[0]
        self.rng = np.random.default_rng(config.seed)
        self.config, self.configs, self.device, self.dim = config, list(configs), device, int(D.shape[1])
        self.Q = _to(Q, device)
        self.n_pairs = len(pairs)
        self.per_epoch = min(self.n_pairs, config.max_pairs_per_epoch or self.n_pairs)
        self.batch_size = min(config.batch_size, max(16, -(-self.per_epoch // MIN_STEPS_PER_EPOCH)))
        self.steps = -(-self.per_epoch // self.batch_size) * config.epochs
        self.pair_q, self.inputs = self._batch_inputs(Q, D, pairs, pool, plan)
        self.members: list[_Member] = []

    def _batch_inputs(
        self,
        Q: np.ndarray,
        D: np.ndarray,
        pairs: np.ndarray,
        pool: np.ndarray | None,
        given: tuple[NegativePlan | None, np.ndarray],
    ) -> tuple[np.ndarray, BatchInputs]:
        config = self.config
        plan, columns = given
        if LOSSES[config.loss].needs_plan or config.negatives == "corpus":
            plan = plan or plan_negatives(
                Q,
                D,
                pairs,
                max_full=config.max_full_negatives,
                n_hard=config.hard_negatives,
                false_negative_threshold=config.false_negative_threshold,
                ann=config.ann,
                columns=columns,
                device=None if self.device == "cpu" else self.device,
            )
            pair_q, pair_c = plan.pair_query, plan.pair_pos_col
            if not plan.full:  # sampled mode reads only normalised rows: one normalised copy, nothing else
                docs = _to(_unit_rows(D, plan.columns), self.device)
                inputs = BatchInputs(docs, pair_c, plan, None, config, self.rng, _unit_docs=docs)
                return pair_q, inputs
            docs = _to(D if len(plan.columns) == len(D) else D[plan.columns], self.device)
        else:
            plan, docs = None, _to(D, self.device)
            pair_q, pair_c = pairs[:, 0], pairs[:, 1]
        pool_t = _to(pool, self.device) if pool is not None else None
        return pair_q, BatchInputs(docs, pair_c, plan, pool_t, config, self.rng)

    def run(
        self, epochs: int | None, validator: _Validator | None, monitor_only: bool, progress: bool
    ) -> list[FitResult]:
        config = self.config
        self.members = [_Member(c, self.dim, self.device, self.steps, monitor_only) for c in self.configs]
        if validator is not None:
            for m in self.members:
                m.tracker.start(validator.score(m.module, m.history), m.history)
        n_epochs = min(epochs or config.epochs, config.epochs)
        kinds = "+".join(c.kind for c in self.configs)
        bar = progress_bar(n_epochs, f"training {kinds}", "epoch", progress)
        for epoch in range(1, n_epochs + 1):
            self.fit_epoch(epoch)
            bar.update(1)
            if validator is not None:
                self._validate(validator, epoch, bar)
            if not any(m.active for m in self.members):
                break
        bar.close()
        return [self._result(m, validator) for m in self.members]

    def _validate(self, validator: _Validator, epoch: int, bar: Any) -> None:
        for m in self.members:
            if m.active:
                current = validator.score(m.module, m.history)
                m.history.val.append(current)
                m.active = not m.tracker.update(epoch, current)
        if len(self.members) == 1:
            bar.set_postfix({self.config.val_metric: f"{self.members[0].history.val[-1]:.4f}"})

    def _result(self, m: _Member, validator: _Validator | None) -> FitResult:
        best_epoch = m.tracker.finish(m.history, validator is not None)
        m.module.eval()
        adapter = to_adapter(m.module.cpu(), m.config.kind, self.dim, {"training": m.config.to_dict()})
        best_val = None if validator is None else float(m.tracker.best_val)
        return FitResult(adapter, m.history, best_epoch, best_val, self.n_pairs, self.per_epoch, self.device)

    def fit_epoch(self, epoch: int) -> None:
        """One pass over this epoch's pairs (all of them, or a ``max_pairs_per_epoch`` sample) for every member still
        training; each records its mean loss."""
        order = self.rng.permutation(self.n_pairs)[: self.per_epoch]
        active = [m for m in self.members if m.active]
        for m in active:
            m.module.train()
            m.loss_sum = 0.0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for m, loss in zip(active, self.step(batch, active), strict=True):
                m.loss_sum += loss * len(batch)
        for m in active:
            m.history.epochs.append(epoch)
            m.history.train_loss.append(m.loss_sum / len(order))

    def step(self, batch: np.ndarray, members: Sequence[_Member]) -> list[float]:
        config = self.config
        spec = LOSSES[config.loss]
        original = self.Q[torch.from_numpy(self.pair_q[batch]).to(self.device)]
        if config.input_noise > 0:
            original = original + config.input_noise * torch.randn_like(original)
        prepared = spec.prepare(self.inputs, batch)
        out = []
        for m in members:
            with _autocast(self.device, config.compute_dtype):
                adapted = m.module(original)
                loss = spec.finish(self.inputs, prepared, adapted)
            out.append(m.step(loss, original, adapted))
        return out


class _Tracker:
    """Best epoch and early stopping (or, with ``monitor_only``, the last epoch)."""

    def __init__(self, module: torch.nn.Module, monitor_only: bool, patience: int) -> None:
        self.module, self.monitor_only, self.patience = module, monitor_only, patience
        self.best_state = copy.deepcopy(module.state_dict())
        self.best_val, self.best_epoch, self.stale = -np.inf, 0, 0

    def start(self, value: float, history: History) -> None:
        """Epoch 0: the starting point (the identity, for identity init)."""
        self.best_val = value
        history.epochs.append(0)
        history.train_loss.append(float("nan"))
        history.val.append(value)

    def update(self, epoch: int, current: float) -> bool:
        """Record an epoch's validation value; True when training should stop."""
        if self.monitor_only:
            self.best_val, self.best_epoch = current, epoch
        elif current > self.best_val + 1e-6:
            self.best_val, self.best_epoch, self.stale = current, epoch, 0
            self.best_state = copy.deepcopy(self.module.state_dict())
        else:
            self.stale += 1
            if self.patience and self.stale >= self.patience:
                logger.info("early stop at epoch %d (best %d: %.4f)", epoch, self.best_epoch, self.best_val)
                return True
        return False

    def finish(self, history: History, validated: bool) -> int:
        if validated and not self.monitor_only:
            self.module.load_state_dict(self.best_state)
        else:
            self.best_epoch = history.epochs[-1]
        history.best_epoch = self.best_epoch
        return self.best_epoch


class _Validator:
    """The validation metric after each epoch: queries (a fixed sample of at most ``max_val_queries`` per part) are
    adapted and searched on the training device against documents held there once (or an approximate index above
    ``ANN_ABOVE`` documents)."""

    def __init__(
        self,
        val: Mapping[str, RowQueries],
        D: np.ndarray,
        config: TrainConfig,
        weights: Mapping[str, float] | None,
        device: str,
    ) -> None:
        from qadapter.core.vectors import TorchIndex

        self.metric, self.weights, self.device = config.val_metric, weights, device
        self.depth = metric_depth([self.metric])
        large = use_ann(len(D), config.ann, above=MINE_ANN_ABOVE, device=device, nbytes=D.nbytes)
        limit = min(config.max_val_queries, MONITOR_QUERIES_LARGE) if large else config.max_val_queries
        self.parts = {name: _sample(part, limit, config.seed) for name, part in val.items()}
        self.queries = {name: _to(q, device) for name, (q, _) in self.parts.items()}
        self.D = D
        # the per-epoch curve uses the approximate index from MINE_ANN_ABOVE documents (what picks the winner of a
        # search, the selection's judgement, stays exact up to ANN_ABOVE)
        self.ann = config.ann
        self.index = None if large else TorchIndex(D, device)

    def _ranking(self, adapted: torch.Tensor) -> np.ndarray:
        if self.index is None:
            from qadapter.core.ann import nearest

            queries = adapted.cpu().numpy()
            return nearest(
                queries, self.D, k=self.depth, ann=self.ann, above=MINE_ANN_ABOVE, nprobe=MINE_NPROBE
            )[0]
        return self.index.search(adapted, self.depth)[0].cpu().numpy()

    def score(self, module: torch.nn.Module, history: History) -> float:
        module.eval()
        parts = {}
        with torch.no_grad():
            for name, (_, padded) in self.parts.items():
                ranking = self._ranking(module(self.queries[name]))
                parts[name] = float(metrics_of_ranking(ranking, padded, [self.metric])[self.metric].mean())
        for name, value in parts.items():
            history.val_parts.setdefault(name, []).append(value)
        module.train()
        if self.weights is None:
            return float(np.mean(list(parts.values())))
        total = sum(self.weights.get(k, 0.0) for k in parts)
        if total <= 0:
            return 0.0
        return float(sum(self.weights.get(k, 0.0) * v for k, v in parts.items()) / total)


def _sample(part: RowQueries, limit: int, seed: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A part's query vectors and padded judgements, or a fixed random sample of ``limit`` of them."""
    rows, grades = part.padded()
    if not limit or len(part) <= limit:
        return part.embeddings, (rows, grades)
    keep = np.sort(np.random.default_rng(seed).choice(len(part), size=limit, replace=False))
    return np.asarray(part.embeddings)[keep], (rows[keep], grades[keep])

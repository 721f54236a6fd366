"""The search space of the default recipe and how one candidate is fitted: candidates, training sets with their
pseudo-query augmentation, and one fit per candidate (shared by the held-out selection, cross-fitting and the
learning curve)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qadapter.adapters import Adapter
from qadapter.train.closed_form import procrustes_adapter, ridge_adapter
from qadapter.train.config import History, TrainConfig
from qadapter.train.trainer import fit
from qadapter.train.validation import RowQueries


@dataclass(frozen=True)
class Candidate:
    """One thing to try: a trained config, a closed-form fit (``ridge``/``procrustes``), or the ``identity``.
    ``small``: also tried on training sets small enough to be cross-fitted (:mod:`qadapter.train.crossfit`), where a
    linear map is also judged shrunk toward the identity by each factor of ``shrinkage`` (``None``: the selection
    rules' factors), and a ``favoured`` candidate's rows share most of the false-ship rate
    (``SelectionRules.favoured_share``), so they need less confidence than the others."""

    name: str
    method: str = "sgd"  # sgd | ridge | procrustes | identity
    config: TrainConfig | None = None
    params: dict[str, Any] = field(default_factory=dict)
    small: bool = True
    shrinkage: tuple[float, ...] | None = None
    favoured: bool = False

    @property
    def kind(self) -> str:
        """The kind of adapter this candidate ships (closed forms are linear maps)."""
        if self.config is not None:
            return self.config.kind
        return "identity" if self.method == "identity" else "linear"

    def describe(self) -> dict[str, Any]:
        if self.config is not None:
            keys = ("kind", "hidden", "loss", "temperature", "lr", "identity_reg", "epochs")
            return {"method": self.method, **{k: getattr(self.config, k) for k in keys}}
        return {"method": self.method, **self.params}


def search_device(candidates: Sequence[Candidate]) -> str | None:
    """Where a search's judging searches run: the device its trained candidates train on when that is not the CPU
    (``None`` on the CPU, where numpy's blockwise search is the fastest)."""
    from qadapter.core.device import resolve_device

    config = next((c.config for c in candidates if c.config is not None), None)
    device = resolve_device(config.device) if config is not None else "cpu"
    return None if device == "cpu" else device


def default_candidates(base: TrainConfig | None = None, kind: str | None = None) -> list[Candidate]:
    """The default search space: small, and each member earns its place on some data (see benchmarks/).

    With ``kind`` (``--kind``), only the identity and candidates of that kind: one fit of ``base`` with that kind
    when the space has none, so the shipped adapter is always of the kind asked for (or the identity).
    """
    base = base or TrainConfig()
    space = _search_space(base)
    if kind is None:
        return space
    kept = [c for c in space if c.method == "identity" or c.kind == kind]
    if len(kept) == 1:
        kept.append(Candidate(kind, config=base.replace(kind=kind)))
    return kept


def _search_space(base: TrainConfig) -> list[Candidate]:
    return [
        Candidate("identity", "identity"),
        # small=False: on 120-question AppleQA development draws it lost 0.015-0.05 MRR@10 on new documents and
        # never qualified, and its best shrunk row's z never beat linear-reg1/3's best; judging it there only raised
        # the z the others need, and the cost (benchmarks/results/small_data_dev_select_full.json, "table")
        Candidate("linear", config=base.replace(kind="linear"), small=False),
        # favoured: the only candidates (with their shrunk rows) that won on small development training sets
        Candidate("linear-reg1", config=base.replace(kind="linear", identity_reg=1.0), favoured=True),
        Candidate("linear-reg3", config=base.replace(kind="linear", identity_reg=3.0), favoured=True),
        # small=False: on small training sets the MLP never qualified on AppleQA-120 development draws and was the
        # costliest fit there (cross-fitting took about 40% less time without it); the planted full rotation it was
        # kept for (200 training queries, tests/test_evaluate_pipeline.py) is recovered by ridge with a lam chosen by
        # leave-one-out (SelectionRules.crossfit_ridge_lam)
        Candidate("mlp-512", config=base.replace(kind="mlp", hidden=512), small=False),
        # shrinkage=(): ridge is judged unshrunk on small training sets. Its shrunk rows never won on 10 AppleQA-120
        # development draws (the unshrunk map lost on every draw) and every row judged raises the bar the others
        # must clear: a linear map shipped on 8 draws without them, on 7 with them
        # (benchmarks/results/small_data_judge.md). Ridge itself stays: on a planted rotation with 100 training
        # queries it is the one candidate that recovers the map (tests/test_crossfit.py).
        Candidate("ridge", "ridge", params={"lam": 1.0}, shrinkage=()),
    ]


def _pairs(rows: Sequence[int], rels: Sequence[dict[int, int]]) -> list[tuple[int, int]]:
    return [(i, d) for i, q in enumerate(rows) for d, g in rels[q].items() if g > 0]


@dataclass
class Augmentation:
    """Extra training queries (e.g. pseudo-queries cut from the training documents) that are never validated on, and
    how many times each training query (by row) enters a fit (``repeats``: how ``--real-weight`` weighs real queries
    above synthetic ones; ``None`` = once each). Repeats apply to fits only, never to validation parts.

    Extra queries join a fit only for documents that the fit's own real queries are about, so documents held out as
    "new" stay unseen."""

    embeddings: np.ndarray
    rels: list[dict[int, int]]
    repeats: np.ndarray | None = None


def training_set(
    Q: np.ndarray, rows: Sequence[int], rels: Sequence[dict[int, int]], extra: Augmentation | None
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Query vectors and (query row, document row) pairs for fitting on ``rows`` (plus matching extra queries).
    Without extra queries or repeats the vectors are ``Q`` itself (no copy: at a million queries a copy is GiBs) and
    the pairs name its rows."""
    rows = list(rows)
    if extra is None or (not len(extra.rels) and extra.repeats is None):
        return Q, [(q, d) for q in rows for d, g in rels[q].items() if g > 0]
    if extra is not None and extra.repeats is not None:
        rows = [q for q in rows for _ in range(int(extra.repeats[q]))]
    pairs = _pairs(rows, rels)
    if extra is None or not len(extra.rels):
        return Q[rows], pairs
    docs = {d for q in rows for d in rels[q]}
    keep = [i for i, r in enumerate(extra.rels) if r and set(r) <= docs]
    offset = len(rows)
    pairs += [(offset + j, d) for j, i in enumerate(keep) for d, g in extra.rels[i].items() if g > 0]
    return np.concatenate([Q[rows], extra.embeddings[keep]]), pairs


def _fit_candidate(
    cand: Candidate,
    Q: np.ndarray,
    D: np.ndarray,
    pairs: list[tuple[int, int]],
    val: dict[str, RowQueries] | None,
    negative_pool: np.ndarray | None = None,
    progress: bool = False,
    weights: dict[str, float] | None = None,
) -> tuple[Adapter, History | None, int]:
    """Fit one candidate on ``pairs``; ``val`` is watched every epoch (history) but picks nothing."""
    dim = D.shape[1]
    if cand.method == "identity":
        return Adapter.identity(dim), None, 0
    if cand.method == "ridge":
        return ridge_adapter(Q, D, pairs, **cand.params), None, 0
    if cand.method == "procrustes":
        return procrustes_adapter(Q, D, pairs), None, 0
    if cand.config is None:
        raise ValueError(f"candidate {cand.name!r} has method {cand.method!r} but no training config")
    result = fit(
        Q,
        D,
        pairs,
        cand.config,
        val=val,
        negative_pool=negative_pool,
        weights=weights,
        monitor_only=True,
        progress=progress,
    )
    return result.adapter, result.history, result.best_epoch


def _fit_candidates(
    candidates: Sequence[Candidate],
    Q: np.ndarray,
    D: np.ndarray,
    pairs: list[tuple[int, int]],
    val: tuple[dict[str, RowQueries], dict[str, float]] | None,
    negative_pool: np.ndarray | None,
    progress: bool,
) -> dict[str, tuple[Adapter, History | None, int, float]]:
    """Every candidate fitted on ``pairs``: trained candidates that differ only in what the adapter is are trained
    together (:func:`~qadapter.train.trainer.fit_together`: shared batches and negatives, same result as alone), the
    rest one by one. Per name: adapter, history, last epoch and seconds (a group's time split evenly). ``val``:
    validation parts watched every epoch (history) and their weights, or ``None``."""
    from qadapter.train.trainer import FitOptions, can_train_together, fit_together

    out: dict[str, tuple[Adapter, History | None, int, float]] = {}
    trained = [c for c in candidates if c.method == "sgd" and c.config is not None]
    groups: list[list[Candidate]] = []
    for cand in trained:
        home = next((g for g in groups if can_train_together([g[0].config, cand.config])), None)  # type: ignore[list-item]
        if home is None:
            groups.append([cand])
        else:
            home.append(cand)
    parts, weights = val if val is not None else (None, None)
    options = FitOptions(parts, negative_pool, None, weights, True, progress)
    for group in groups:
        t0 = time.perf_counter()
        results = fit_together(Q, D, pairs, [c.config for c in group if c.config is not None], options)
        seconds = (time.perf_counter() - t0) / len(group)
        for cand, result in zip(group, results, strict=True):
            out[cand.name] = (result.adapter, result.history, result.best_epoch, seconds)
    for cand in candidates:
        if cand.name not in out:
            t0 = time.perf_counter()
            adapter, history, epoch = _fit_candidate(cand, Q, D, pairs, parts, negative_pool, progress)
            out[cand.name] = (adapter, history, epoch, time.perf_counter() - t0)
    return out

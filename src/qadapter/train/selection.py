"""Choose the adapter on validation data carved out of the training split, with the identity always a candidate.

Validation has up to two parts, both taken from the *training* split (never from the split being reported):

- ``new-documents``: every query of a random subset of documents (whole connected groups of queries and documents,
  so no document is on both sides). It predicts what happens to documents added after training.
- ``seen-documents``: some other queries of documents that keep training queries. It predicts what happens to new
  queries about documents that had training queries.

Each candidate is fitted on the rest with its whole schedule and judged once, at its end, on the validation parts
(nothing is picked per epoch, so the judges are not flattered by having chosen the epoch).

Objectives (what the winner maximises):

- ``balanced`` (default): the mean gain over the identity across parts.
- ``seen``: the gain on seen documents.
- ``covered``: for a corpus whose documents (nearly) all have training queries, so that queries about documents
  without them are rare: each part weighs what it stands for in the corpus, ``coverage`` (the share of corpus
  documents with training queries) for seen documents and ``1 - coverage`` for new ones.

The winner must (1) gain with confidence: at least ``min_z`` = 2 standard errors above zero, which also keeps the
chance of shipping a map fitted to noise small across several candidates; and (2) under ``balanced`` and ``seen``,
show no evidence of harm on documents without training queries: their gain not more than ``max_harm_z`` = 1
standard error below zero. Under ``covered`` such harm is not a veto (the corpus has next to no such documents) but
is reported in the reason, because documents added later are such documents. When no candidate qualifies,
qadapter ships the identity and says so. The winner is then refitted, with the same schedule, on all training
queries.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qadapter.adapters import Adapter
from qadapter.train.closed_form import procrustes_adapter, ridge_adapter
from qadapter.train.config import History, TrainConfig
from qadapter.train.objectives import NEW, OBJECTIVES, SEEN, part_weights, resolve_objective
from qadapter.train.trainer import fit
from qadapter.train.validation import RowQueries, per_query

logger = logging.getLogger(__name__)

__all__ = ["NEW", "OBJECTIVES", "SEEN", "Candidate", "SelectionResult", "SelectionRules", "select"]


@dataclass(frozen=True)
class Candidate:
    """One thing to try: a trained config, a closed-form fit (``ridge``/``procrustes``), or the ``identity``."""

    name: str
    method: str = "sgd"  # sgd | ridge | procrustes | identity
    config: TrainConfig | None = None
    params: dict[str, Any] = field(default_factory=dict)

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
        Candidate("linear", config=base.replace(kind="linear")),
        Candidate("linear-reg1", config=base.replace(kind="linear", identity_reg=1.0)),
        Candidate("linear-reg3", config=base.replace(kind="linear", identity_reg=3.0)),
        Candidate("mlp-512", config=base.replace(kind="mlp", hidden=512)),
        Candidate("ridge", "ridge", params={"lam": 1.0}),
    ]


@dataclass
class SelectionResult:
    adapter: Adapter
    chosen: str
    reason: str
    candidates: list[dict[str, Any]]
    history: History | None
    validation: dict[str, int]
    seconds: float


# -- validation split --------------------------------------------------------------------------------------------

#: the most queries a validation part holds: its standard error is then below ~0.01 MRR@10, and judging a candidate
#: costs part x corpus similarities, which must not grow with a large training set (the rest of the queries fit)
MAX_PART = 2_000


def _components(rels: Sequence[dict[int, int]]) -> list[list[int]]:
    """Groups of queries connected through shared relevant documents (union-find)."""
    parent = list(range(len(rels)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for q, docs in enumerate(rels):
        for d in docs:
            if d in owner:
                a, b = find(q), find(owner[d])
                if a != b:
                    parent[a] = b
            else:
                owner[d] = q
    groups: dict[int, list[int]] = {}
    for q in range(len(rels)):
        groups.setdefault(find(q), []).append(q)
    return list(groups.values())


def _new_documents_part(rels: Sequence[dict[int, int]], rng: np.random.Generator, size: float) -> list[int]:
    """Whole groups of connected queries and documents, in random order, until ``size`` queries."""
    groups = _components(rels)
    order = rng.permutation(len(groups))
    new: list[int] = []
    if len(groups) > 1:
        for g in order:
            if len(new) >= size:
                break
            if len(new) + len(groups[g]) <= 2 * size:
                new.extend(groups[g])
    return new


def _seen_documents_part(rels: Sequence[dict[int, int]], remaining: list[int], size: float) -> list[int]:
    """Queries (in the order of ``remaining``) whose every document keeps another query for fitting."""
    count: dict[int, int] = {}
    for q in remaining:
        for d in rels[q]:
            count[d] = count.get(d, 0) + 1
    seen: list[int] = []
    for q in remaining:
        if len(seen) >= size:
            break
        if all(count[d] >= 2 for d in rels[q]):
            seen.append(q)
            for d in rels[q]:
                count[d] -= 1
    return seen


def validation_split(
    rels: Sequence[dict[int, int]],
    *,
    new_fraction: float = 0.15,
    seen_fraction: float = 0.1,
    min_part: int = 10,
    max_part: int = MAX_PART,
    seed: int = 0,
) -> tuple[list[int], dict[str, list[int]]]:
    """Split training queries (by row) into a fitting part and validation parts (see the module docstring); a part
    holds at most ``max_part`` queries (the rest fit)."""
    rng = np.random.default_rng(seed)
    n = len(rels)
    new = _new_documents_part(rels, rng, min(new_fraction * n, max_part))
    new_set = set(new)
    remaining = [int(q) for q in rng.permutation(n) if q not in new_set]
    seen = _seen_documents_part(rels, remaining, min(seen_fraction * n, max_part))
    parts = {name: sorted(rows) for name, rows in ((NEW, new), (SEEN, seen)) if len(rows) >= min_part}
    held = {q for rows in parts.values() for q in rows}
    return [q for q in range(n) if q not in held], parts


# -- selection ---------------------------------------------------------------------------------------------------


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
    judges: _Judges | None,
    negative_pool: np.ndarray | None,
    progress: bool,
) -> dict[str, tuple[Adapter, History | None, int, float]]:
    """Every candidate fitted on ``pairs``: trained candidates that differ only in what the adapter is are trained
    together (:func:`~qadapter.train.trainer.fit_together`: shared batches and negatives, same result as alone), the
    rest one by one; ``judges`` (when given) are watched every epoch. Per name: adapter, history, last epoch and
    seconds (a group's time split evenly)."""
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
    val, weights = (judges.parts, judges.weights) if judges is not None else (None, None)
    options = FitOptions(val, negative_pool, None, weights, True, progress)
    for group in groups:
        t0 = time.perf_counter()
        results = fit_together(Q, D, pairs, [c.config for c in group if c.config is not None], options)
        seconds = (time.perf_counter() - t0) / len(group)
        for cand, result in zip(group, results, strict=True):
            out[cand.name] = (result.adapter, result.history, result.best_epoch, seconds)
    for cand in candidates:
        if cand.name not in out:
            t0 = time.perf_counter()
            adapter, history, epoch = _fit_candidate(cand, Q, D, pairs, val, negative_pool, progress)
            out[cand.name] = (adapter, history, epoch, time.perf_counter() - t0)
    return out


@dataclass(frozen=True)
class SelectionRules:
    """How the winner is judged (see the module docstring): the validation ``metric``, the confidence ``min_z`` a gain
    needs, the ``max_harm_z`` tolerated on documents without training queries, the ``objective`` (``auto`` resolves
    with ``coverage``, the share of corpus documents with training queries) and the ``seed`` of the validation split."""

    metric: str = "mrr@10"
    min_z: float = 2.0
    max_harm_z: float = 1.0
    objective: str = "balanced"
    coverage: float = 1.0
    seed: int = 0

    def resolved(self) -> SelectionRules:
        return dataclasses.replace(self, objective=resolve_objective(self.objective, self.coverage))


@dataclass
class _Judges:
    """The validation parts, the base model's per-query scores on them and how much each part counts."""

    parts: dict[str, RowQueries]
    base: dict[str, np.ndarray]
    weights: dict[str, float]


def select(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    rels: Sequence[dict[int, int]],
    *,
    candidates: Sequence[Candidate] | None = None,
    rules: SelectionRules | None = None,
    negative_pool: np.ndarray | None = None,
    augmentation: Augmentation | None = None,
    progress: bool = False,
) -> SelectionResult:
    """Try ``candidates`` on validation parts of the training queries and refit the winner on all of them."""
    rules = (rules or SelectionRules()).resolved()
    start = time.perf_counter()
    candidates = list(candidates or default_candidates())
    dim = doc_embeddings.shape[1]
    fit_rows, parts_rows = validation_split(rels, seed=rules.seed)
    sizes = {"fit_queries": len(fit_rows), **{f"val_{k}": len(v) for k, v in parts_rows.items()}}
    if not parts_rows:
        reason = (
            f"only {len(rels)} training queries: too few to hold out validation queries, so no adapter can be shown "
            "to help; kept the base model (identity). Add labelled or generated queries and train again."
        )
        return SelectionResult(
            Adapter.identity(dim), "identity", reason, [], None, sizes, time.perf_counter() - start
        )
    judges = _judges(query_embeddings, doc_embeddings, rels, parts_rows, rules)
    Q_fit, fit_pairs = training_set(query_embeddings, fit_rows, rels, augmentation)
    # Every candidate trains its whole schedule and is judged once, at its end, on the validation parts. Picking
    # epochs on validation data as well (the first design) needed half of it to early-stop, which left noisier
    # judges, and the refit's epoch count inherited that noise: on AppleQA development splits it cost about
    # 0.01-0.02 MRR@10 against fixed schedules (benchmarks/results/recipe_dev.md).
    table: list[dict[str, Any]] = []
    histories: dict[str, History | None] = {}
    fitted = _fit_candidates(candidates, Q_fit, doc_embeddings, fit_pairs, judges, negative_pool, progress)
    for cand in candidates:
        adapter, histories[cand.name], best_epoch, seconds = fitted[cand.name]
        t0 = time.perf_counter()
        row = _judge(cand, adapter, doc_embeddings, judges, rules.metric)
        row["epochs"] = best_epoch
        row["seconds"] = round(seconds + time.perf_counter() - t0, 2)
        table.append(row)
        logger.info(
            "candidate %s: gain %+.4f (z=%.2f) %s", cand.name, row["mean_gain"], row["z"], row["gain"]
        )

    winner = _winner(table, rules)
    if winner is None:
        reason = _no_winner_reason(table, rules.metric)
        return SelectionResult(
            Adapter.identity(dim), "identity", reason, table, None, sizes, time.perf_counter() - start
        )
    cand = next(c for c in candidates if c.name == winner["name"])
    reason = _winner_reason(winner, rules)
    Q_all, all_pairs = training_set(query_embeddings, range(len(rels)), rels, augmentation)
    adapter, _, _ = _fit_candidate(cand, Q_all, doc_embeddings, all_pairs, None, negative_pool, progress)
    return SelectionResult(
        adapter, cand.name, reason, table, histories[cand.name], sizes, time.perf_counter() - start
    )


def _judges(
    Q: np.ndarray,
    D: np.ndarray,
    rels: Sequence[dict[int, int]],
    parts_rows: dict[str, list[int]],
    rules: SelectionRules,
) -> _Judges:
    parts = {name: RowQueries(Q[rows], [rels[q] for q in rows]) for name, rows in parts_rows.items()}
    base = {
        name: per_query(part.embeddings, D, part.rels, [rules.metric])[rules.metric]
        for name, part in parts.items()
    }
    return _Judges(parts, base, part_weights(rules.objective, rules.coverage, list(parts)))


def _judge(cand: Candidate, adapter: Adapter, D: np.ndarray, judges: _Judges, metric: str) -> dict[str, Any]:
    """One row of the selection table: the candidate's score and paired gain over the identity on each part, and
    their weighted mean with its z (gain over its standard error)."""
    row: dict[str, Any] = {
        "name": cand.name,
        "params": cand.describe(),
        "val": {},
        "gain": {},
        "chosen": False,
        "z_part": {},
    }
    means, variances = [], []
    for name, part in judges.parts.items():
        scores = per_query(adapter.transform(part.embeddings), D, part.rels, [metric])[metric]
        diff = scores - judges.base[name]
        row["val"][name] = float(scores.mean())
        row["gain"][name] = float(diff.mean())
        sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
        row["z_part"][name] = float(diff.mean() / (sd / np.sqrt(len(diff)))) if sd > 0 else 0.0
        means.append(diff.mean())
        variances.append(diff.var(ddof=1) / len(diff) if len(diff) > 1 else 0.0)
    w = np.array([judges.weights.get(n, 0.0) for n in judges.parts])
    w = w / w.sum()
    gain = float(np.dot(w, means))
    se = float(np.sqrt(np.dot(w**2, variances)))
    row["mean_gain"] = gain
    row["z"] = gain / se if se > 0 else (0.0 if gain == 0 else float("inf"))
    return row


def _eligible(row: dict[str, Any], rules: SelectionRules) -> bool:
    """A gain with confidence and, unless the objective is ``covered``, no evidence of harm on documents without
    training queries (not more than ``max_harm_z`` standard errors below zero)."""
    if row["name"] == "identity":
        return False
    no_harm = rules.objective == "covered" or row["z_part"].get(NEW, 0.0) >= -rules.max_harm_z
    return bool(row["z"] >= rules.min_z and row["mean_gain"] > 0 and no_harm)


def _winner(table: list[dict[str, Any]], rules: SelectionRules) -> dict[str, Any] | None:
    """The eligible row with the largest gain (marked chosen), or ``None`` (the identity's row is marked)."""
    ok = [r for r in table if _eligible(r, rules)]
    winner = max(ok, key=lambda r: r["mean_gain"]) if ok else None
    for r in table:
        r["chosen"] = r is winner or (winner is None and r["name"] == "identity")
    return winner


def _no_winner_reason(table: list[dict[str, Any]], metric: str) -> str:
    best = max((r for r in table if r["name"] != "identity"), key=lambda r: r["mean_gain"], default=None)
    detail = (
        f" (best was {best['name']}: {best['mean_gain']:+.4f} {metric}, z={best['z']:.2f})" if best else ""
    )
    return (
        f"no candidate beat the base model on validation {metric} with confidence while not hurting documents "
        f"without training queries{detail}; kept the base model (identity)"
    )


def _winner_reason(winner: dict[str, Any], rules: SelectionRules) -> str:
    gains = ", ".join(f"{k} {v:+.4f}" for k, v in winner["gain"].items())
    reason = (
        f"{winner['name']} had the largest validation gain in {rules.metric} ({gains}; z={winner['z']:.1f})"
    )
    harm_z = winner["z_part"].get(NEW, 0.0)
    if harm_z < -rules.max_harm_z:
        # only reachable under "covered": say plainly what the user is trading
        reason += (
            f"; caution: on documents without training queries it was worse than the base model (z={harm_z:.1f}). "
            f"{rules.coverage:.0%} of this corpus has training queries, so that costs little now, but documents added "
            "later need queries of their own and a retrain (or train with --objective balanced, which refuses such maps)"
        )
        logger.warning(reason)
    return reason

"""The train stage as named steps: check the options, prepare the training data, choose the objective, search (or
fit one recipe), draw the learning curve, record the config, save.

``train(workspace, split="train")`` is the one entry point (the ``qadapter train`` command wraps it);
``fit_adapter(query_embeddings, doc_embeddings, pairs)`` is the array-level API for callers with their own data.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.adapters import Adapter, save_adapter
from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.data.workspace import Workspace
from qadapter.encoders import Encoder, get_encoder
from qadapter.errors import QadapterError
from qadapter.train import data as training_data
from qadapter.train.config import History, TrainConfig
from qadapter.train.crossfit import small_schedule, split_name
from qadapter.train.curve import learning_curve as draw_learning_curve
from qadapter.train.data import TrainingData
from qadapter.train.objectives import resolve_objective
from qadapter.train.options import TrainOptions, check_keys
from qadapter.train.recipes import get_recipe, recipe_config
from qadapter.train.selection import (
    Augmentation,
    SelectionResult,
    SelectionRules,
    default_candidates,
    select,
    training_set,
)
from qadapter.train.trainer import fit

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    adapter: Adapter
    path: Path | None
    recipe: str
    chosen: str
    reason: str
    seconds: float
    history: History | None = None
    selection: SelectionResult | None = None
    learning_curve: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    """What a recipe produced: the adapter, its name and why, and what the record keeps of how."""

    adapter: Adapter
    chosen: str
    reason: str
    config: TrainConfig | None
    history: History | None = None
    selection: SelectionResult | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)


def fit_adapter(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    recipe: str = "default",
    negative_pool: np.ndarray | None = None,
    seed: int = 0,
    **overrides: Any,
) -> Adapter:
    """Array-level training: ``pairs`` are (query row, document row) of relevant judgements."""
    if get_recipe(recipe).search:
        rels: list[dict[int, int]] = [{} for _ in range(len(query_embeddings))]
        for q, d in pairs:
            rels[q][d] = 1
        config = recipe_config(recipe, **overrides)
        candidates = default_candidates(config, overrides.get("kind"))
        rules = SelectionRules(seed=seed)
        return select(query_embeddings, doc_embeddings, rels, candidates=candidates, rules=rules).adapter
    config = recipe_config(recipe, has_pool=negative_pool is not None, seed=seed, **overrides)
    return fit(query_embeddings, doc_embeddings, pairs, config, negative_pool=negative_pool).adapter


def train(
    workspace: str | Path | Workspace,
    split: str | Sequence[str] = "train",
    *,
    output: str | Path | None = None,
    recipe: str = "default",
    model: str | Encoder = DEFAULT_MODEL,
    negatives: str | Path | None = None,
    seed: int = 0,
    objective: str = "auto",
    pseudo_queries: int = 10,
    learning_curve: bool = True,
    real_weight: float = 1.0,
    overwrite: bool = False,
    progress: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train an adapter on the queries of ``split`` (one split or several, merged) of ``workspace`` and save it to
    ``output`` (when given). ``overrides`` are :class:`TrainConfig` fields; ``real_weight`` counts each real query
    (one not written by a generator) that many times against a synthetic one."""
    options = TrainOptions.create(
        split=split,
        recipe=recipe,
        objective=objective,
        seed=seed,
        pseudo_queries=pseudo_queries,
        learning_curve=learning_curve,
        real_weight=real_weight,
        negatives=negatives,
    )
    check_keys(overrides, "training config option")
    recipe_config(recipe, **overrides)  # a bad override fails here, before any embedding
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if output is not None and Path(output).exists() and not overwrite:
        raise QadapterError(f"{output} already exists; choose another output path or pass --overwrite")
    encoder = get_encoder(model, device=overrides.get("device", "auto")) if isinstance(model, str) else model
    start = time.perf_counter()
    data = training_data.load_training_data(ws, options.splits, encoder, progress)
    extras = prepare_extras(ws, data, options, encoder, progress)
    pool = training_data.negative_pool(negatives, encoder, ws, progress) if negatives is not None else None
    if get_recipe(recipe).search:
        outcome = run_search(data, options, overrides, extras, pool, progress)
    else:
        outcome = fit_recipe(data, options, overrides, extras, pool, progress)
    seconds = time.perf_counter() - start
    outcome.adapter.config = record_config(ws, data, options, outcome, encoder, extras, output, seconds)
    outcome.adapter.config["score_scale"] = score_scale(outcome.adapter, data, options.seed)
    path = save_adapter(outcome.adapter, output, overwrite=overwrite) if output is not None else None
    return TrainResult(
        outcome.adapter,
        path,
        recipe,
        outcome.chosen,
        outcome.reason,
        seconds,
        outcome.history,
        outcome.selection,
        outcome.curve,
    )


def prepare_extras(
    ws: Workspace, data: TrainingData, options: TrainOptions, encoder: Encoder, progress: bool
) -> Augmentation | None:
    """Pseudo-queries of the training documents (unless the recipe or the data say not to) and the repeats that
    weigh real queries (``real_weight``)."""
    n_pseudo = options.pseudo_queries
    share = training_data.offline_share(ws, data.query_ids)
    if share >= 0.5:
        # Validation queries are then pseudo-queries too: they cannot show how real questions will fare.
        logger.warning(
            "%.0f%% of the training queries are offline pseudo-queries: validation on them does not predict how "
            "real user questions will fare; prefer LLM-generated or logged queries",
            100 * share,
        )
        n_pseudo = 0  # more of the same kind would add nothing but weight
    extras = None
    if get_recipe(options.recipe).pseudo_queries:
        extras = training_data.pseudo_queries(
            ws, data.doc_ids, data.training_docs, n_pseudo, encoder, progress
        )
    repeats = training_data.query_repeats(ws, data.query_ids, options.real_weight)
    if repeats is None:
        return extras
    if extras is None:
        extras = Augmentation(np.zeros((0, data.D.shape[1]), dtype=np.float32), [])
    extras.repeats = repeats
    return extras


def run_search(
    data: TrainingData,
    options: TrainOptions,
    overrides: dict[str, Any],
    extras: Augmentation | None,
    pool: np.ndarray | None,
    progress: bool,
) -> Outcome:
    """The searching recipe: choose among candidates (only of ``--kind`` when given) and the identity."""
    config = recipe_config(options.recipe, seed=options.seed, **overrides)
    candidates = default_candidates(config, overrides.get("kind"))
    rules = SelectionRules(
        metric=config.val_metric,
        objective=resolve_objective(options.objective, data.coverage),
        coverage=data.coverage,
        seed=options.seed,
    )
    if "epochs" in overrides:  # an explicit --epochs holds for cross-fitted fits too
        rules = dataclasses.replace(rules, crossfit_epochs=None)
    selection = select(
        data.Q,
        data.D,
        data.rels,
        candidates=candidates,
        rules=rules,
        negative_pool=pool,
        augmentation=extras,
        progress=progress,
    )
    # a cross-fitted search may pick a linear map shrunk toward the identity: "linear-reg1@0.5"
    base_name, shrinkage = split_name(selection.chosen)
    if "epochs" in selection.validation:  # cross-fitted: every fit, the shipped one too, ran that many epochs
        candidates = small_schedule(candidates, rules)
    pick = next((c for c in candidates if c.name == base_name and c.method != "identity"), candidates[1])
    curve: list[dict[str, Any]] = []
    if options.learning_curve:
        curve = draw_learning_curve(pick, data.Q, data.D, data.rels, rules, extras, shrinkage=shrinkage)
    chosen_config = next((c.config for c in candidates if c.name == base_name and c.config), None)
    return Outcome(
        selection.adapter,
        selection.chosen,
        selection.reason,
        chosen_config,
        selection.history,
        selection,
        curve,
    )


def fit_recipe(
    data: TrainingData,
    options: TrainOptions,
    overrides: dict[str, Any],
    extras: Augmentation | None,
    pool: np.ndarray | None,
    progress: bool,
) -> Outcome:
    """A single-fit recipe: one adapter on every training query, no validation."""
    recipe = get_recipe(options.recipe)
    if recipe.warning:
        logger.warning(recipe.warning)
    config = recipe_config(options.recipe, has_pool=pool is not None, seed=options.seed, **overrides)
    Q_train, train_pairs = training_set(data.Q, range(len(data.rels)), data.rels, extras)
    result = fit(Q_train, data.D, train_pairs, config, negative_pool=pool, progress=progress)
    reason = f"recipe '{options.recipe}' trains a single {config.kind} adapter ({config.loss} loss, {config.epochs} epochs)"
    return Outcome(result.adapter, config.kind, reason, config, result.history)


#: training queries whose top-k scores fit the score mapping (a sample: the mapping has 201 knots)
SCORE_SCALE_QUERIES = 2000


def score_scale(adapter: Adapter, data: TrainingData, seed: int) -> dict[str, Any]:
    """How the adapter moves returned similarity scores (a monotone map from adapted to base scores, see
    :mod:`qadapter.core.score_scale`), fitted on the training queries: a RAG app's similarity cut-off keeps meaning
    the same share of results (``map_threshold``), and ``to_base_scale`` puts scores back on the base scale."""
    from qadapter.core.score_scale import score_mapping_for

    rows = np.arange(len(data.Q))
    if len(rows) > SCORE_SCALE_QUERIES:
        rows = np.sort(np.random.default_rng(seed).choice(rows, SCORE_SCALE_QUERIES, replace=False))
    base = data.Q[rows]
    return score_mapping_for(base, adapter.transform(base), data.D)


def _base_model_record(encoder: Encoder, dim: int) -> dict[str, Any]:
    """The base model an adapter was trained on: its name and dimension, and for a local model the precision it
    computed in (``--precision``; an endpoint's vectors have none to record)."""
    record: dict[str, Any] = {"name": encoder.name, "dim": dim}
    precision = getattr(encoder, "precision", None)
    if isinstance(precision, str):
        record["precision"] = precision
    return record


def record_config(
    ws: Workspace,
    data: TrainingData,
    options: TrainOptions,
    outcome: Outcome,
    encoder: Encoder,
    extras: Augmentation | None,
    output: str | Path | None,
    seconds: float,
) -> dict[str, Any]:
    """What the adapter folder records about its training (every key other code and the report read)."""
    selection = outcome.selection
    searched = get_recipe(options.recipe).search
    return {
        "name": str(output) if output else "",
        "base_model": _base_model_record(encoder, int(data.D.shape[1])),
        "similarity": "cosine",
        "training": {
            "recipe": options.recipe,
            "objective": resolve_objective(options.objective, data.coverage) if searched else None,
            "selected": outcome.chosen,
            # the chosen map shrunk toward the identity, I + a (W - I) (1: as fitted)
            "shrinkage": split_name(outcome.chosen)[1] if searched else 1.0,
            "reason": outcome.reason,
            "config": outcome.config.to_dict() if outcome.config else None,
            "negatives": str(options.negatives) if options.negatives else "training documents",
            "pseudo_queries": len(extras.rels) if extras else 0,
            "real_weight": options.real_weight,
            "seconds": round(seconds, 2),
            "candidates": selection.candidates if selection else [],
            "validation": selection.validation if selection else {},
            "history": outcome.history.to_dict() if outcome.history else None,
            "learning_curve": outcome.curve,
        },
        "data": {
            "workspace": str(ws.path),
            "split": options.split if isinstance(options.split, str) else "+".join(options.splits),
            "splits": list(options.splits),
            "n_queries": len(data.query_ids),
            "n_pairs": len(data.pairs),
            "n_documents": len(data.doc_ids),
            "n_training_documents": len(data.training_docs),
            "coverage": round(data.coverage, 4),
            "offline_pseudo_query_share": round(training_data.offline_share(ws, data.query_ids), 4),
            "real_query_share": round(training_data.real_share(ws, data.query_ids), 4),
        },
    }

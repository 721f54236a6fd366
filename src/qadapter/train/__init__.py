"""The train stage: fit a query adapter on a workspace's cached embeddings and save it.

``train(workspace, split="train")`` is the one entry point (the ``qadapter train`` command wraps it);
``fit_adapter(query_embeddings, doc_embeddings, pairs)`` is the array-level API for callers with their own data.
"""

from __future__ import annotations

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
from qadapter.train.config import History, TrainConfig
from qadapter.train.recipes import RECIPES, recipe_config
from qadapter.train.selection import (
    OBJECTIVES,
    Augmentation,
    Candidate,
    SelectionResult,
    default_candidates,
    select,
    training_set,
)
from qadapter.train.trainer import fit

logger = logging.getLogger(__name__)

#: with at least this share of the corpus covered by training queries, objective "auto" means "covered"
AUTO_COVERED = 0.95

__all__ = ["RECIPES", "TrainConfig", "TrainResult", "fit", "fit_adapter", "select", "train"]


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


def _rels_by_row(
    qrels: dict[str, dict[str, int]], query_ids: Sequence[str], doc_index: dict[str, int]
) -> list[dict[int, int]]:
    return [{doc_index[d]: g for d, g in qrels[q].items() if g > 0 and d in doc_index} for q in query_ids]


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
    if recipe == "default":
        rels: list[dict[int, int]] = [{} for _ in range(len(query_embeddings))]
        for q, d in pairs:
            rels[q][d] = 1
        config = recipe_config("default", **overrides)
        return select(
            query_embeddings, doc_embeddings, rels, candidates=default_candidates(config), seed=seed
        ).adapter
    config = recipe_config(recipe, has_pool=negative_pool is not None, seed=seed, **overrides)
    return fit(query_embeddings, doc_embeddings, pairs, config, negative_pool=negative_pool).adapter


def _learning_curve(
    chosen: Candidate,
    Q: np.ndarray,
    D: np.ndarray,
    rels: list[dict[int, int]],
    seed: int,
    metric: str,
    augmentation: Augmentation | None = None,
    objective: str = "balanced",
    coverage: float = 1.0,
) -> list[dict[str, Any]]:
    """Validation metric (parts weighed as ``objective`` weighs them) against the number of training pairs, for the
    chosen kind of adapter."""
    from qadapter.train.selection import _fit_candidate, part_weights, validation_split
    from qadapter.train.validation import RowQueries, per_query

    fit_rows, parts = validation_split(rels, seed=seed)
    if not parts or chosen.method == "identity":
        return []
    val = {k: RowQueries(Q[rows], [rels[q] for q in rows]) for k, rows in parts.items()}
    weights = part_weights(objective, coverage, list(val))

    def score_of(transform: Any) -> float:
        return float(
            sum(
                weights.get(k, 0.0) * per_query(transform(v.embeddings), D, v.rels, [metric])[metric].mean()
                for k, v in val.items()
            )
        )

    base = score_of(lambda x: x)
    rng = np.random.default_rng(seed)
    shuffled = [fit_rows[i] for i in rng.permutation(len(fit_rows))]
    curve = []
    for fraction in (0.1, 0.25, 0.5, 1.0):
        rows = shuffled[: max(2, int(round(fraction * len(shuffled))))]
        Q_sub, pairs = training_set(Q, rows, rels, augmentation)
        adapter, _, _ = _fit_candidate(chosen, Q_sub, D, pairs, None)
        score = score_of(adapter.transform)
        n_real = sum(1 for q in rows for g in rels[q].values() if g > 0)
        curve.append({"n_pairs": n_real, "baseline": base, "adapted": score, "metric": metric})
    return curve


def _pseudo_queries(
    ws: Workspace, doc_ids: Sequence[str], train_docs: set[int], n: int, encoder: Encoder, progress: bool
) -> Augmentation | None:
    """Offline pseudo-queries (headings, keywords, sentences cut from the chunk) for the training documents only.

    They add cheap, document-grounded training pairs; on a development split of AppleQA (questions 13-16 held out
    from the training questions) they lifted hit@10 from 0.786 to 0.807 (benchmarks/results/recipe_dev.md).
    """
    from qadapter.embedding import cache_for
    from qadapter.encoders import embed
    from qadapter.generate.offline import offline_queries

    if n <= 0 or not train_docs:
        return None
    corpus = ws.corpus()
    chosen = {doc_ids[d]: corpus[doc_ids[d]] for d in sorted(train_docs)}
    generated = offline_queries(chosen, n)
    index = {d: i for i, d in enumerate(doc_ids)}
    texts, rels = [], []
    for doc_id, queries in generated.items():
        for text in queries:
            texts.append(text)
            rels.append({index[doc_id]: 1})
    if not texts:
        return None
    with cache_for(ws) as cache:
        vectors = embed(
            encoder, texts, kind="query", cache=cache, progress=progress, desc="embedding pseudo-queries"
        )
    return Augmentation(vectors, rels)


def _offline_share(ws: Workspace, query_ids: Sequence[str]) -> float:
    """Share of ``query_ids`` written by the offline pseudo-query generator (from their provenance metadata)."""
    from qadapter.generate.offline import GENERATOR

    queries = ws.queries()
    offline = sum(1 for q in query_ids if q in queries and queries[q].metadata.get("generator") == GENERATOR)
    return offline / max(1, len(query_ids))


def _negative_pool(source: str | Path, encoder: Encoder, ws: Workspace, progress: bool) -> np.ndarray:
    """Embed an out-of-domain negative pool: a workspace folder, or documents to ingest (e.g. a PDF)."""
    from qadapter.embedding import cache_for, embed_corpus

    source = Path(source)
    pool_ws = Workspace(source)
    if not pool_ws.exists():
        import hashlib

        from qadapter.ingest import ingest

        key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
        pool_ws = Workspace(ws.state_dir / "negatives" / key)
        if not pool_ws.exists():
            ingest([source], pool_ws.path, overwrite=True, progress=progress)
    with cache_for(ws) as cache:
        return embed_corpus(pool_ws, encoder, cache=cache, progress=progress).embeddings


def train(
    workspace: str | Path | Workspace,
    split: str = "train",
    *,
    output: str | Path | None = None,
    recipe: str = "default",
    model: str | Encoder = DEFAULT_MODEL,
    negatives: str | Path | None = None,
    seed: int = 0,
    objective: str = "auto",
    pseudo_queries: int = 10,
    learning_curve: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train an adapter on the ``split`` queries of ``workspace`` and save it to ``output`` (when given)."""
    from qadapter.embedding import embed_workspace

    if recipe not in RECIPES:
        raise QadapterError(f"unknown recipe '{recipe}'; valid recipes: {', '.join(RECIPES)}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if output is not None and Path(output).exists() and not overwrite:
        raise QadapterError(f"{output} already exists; choose another output path or pass --overwrite")
    encoder = get_encoder(model) if isinstance(model, str) else model
    start = time.perf_counter()
    corpus, splits = embed_workspace(ws, [split], model=encoder, progress=progress)
    queries = splits[split]
    doc_index = corpus.index()
    rels = _rels_by_row(queries.qrels, queries.query_ids, doc_index)
    pairs = queries.pairs(doc_index)
    D, Q = corpus.embeddings, queries.embeddings
    pool = _negative_pool(negatives, encoder, ws, progress) if negatives is not None else None
    augmentation = None
    offline_share = _offline_share(ws, queries.query_ids)
    if offline_share >= 0.5:
        # Validation queries are then pseudo-queries too: they cannot show how real questions will fare.
        logger.warning(
            "%.0f%% of the training queries are offline pseudo-queries: validation on them does not predict how "
            "real user questions will fare; prefer LLM-generated or logged queries",
            100 * offline_share,
        )
        pseudo_queries = 0  # more of the same kind would add nothing but weight
    if recipe != "seed":
        train_docs = {d for _, d in pairs}
        augmentation = _pseudo_queries(ws, corpus.doc_ids, train_docs, pseudo_queries, encoder, progress)

    selection: SelectionResult | None = None
    history: History | None = None
    curve: list[dict[str, Any]] = []
    coverage = len({d for _, d in pairs}) / max(1, len(corpus.doc_ids))
    if objective == "auto":
        # (Nearly) every document has training queries, e.g. questions generated for the whole corpus: what matters is
        # new questions about them, so validation weighs each kind of document by its share of the corpus. Otherwise
        # both kinds weigh equally and a map that hurts documents without training queries is refused.
        objective = "covered" if coverage >= AUTO_COVERED else "balanced"
    if objective not in OBJECTIVES:
        raise QadapterError(
            f"unknown objective '{objective}'; valid objectives: auto, {', '.join(OBJECTIVES)}"
        )
    if recipe == "default":
        config = recipe_config("default", seed=seed, **overrides)
        candidates = default_candidates(config)
        selection = select(
            Q,
            D,
            rels,
            candidates=candidates,
            metric=config.val_metric,
            objective=objective,
            coverage=coverage,
            seed=seed,
            negative_pool=pool,
            augmentation=augmentation,
            progress=progress,
        )
        adapter, chosen, reason, history = (
            selection.adapter,
            selection.chosen,
            selection.reason,
            selection.history,
        )
        if learning_curve:
            pick = next((c for c in candidates if c.name == chosen and c.method != "identity"), candidates[1])
            curve = _learning_curve(
                pick, Q, D, rels, seed, config.val_metric, augmentation, objective, coverage
            )
        trained_config = next((c.config for c in candidates if c.name == chosen and c.config), None)
    else:
        if recipe == "seed":
            logger.warning(
                "recipe 'seed' reproduces the original notebook for comparison; it has no validation and measurably "
                "hurts retrieval on documents without training queries (benchmarks/results/quality.md)"
            )
        config = recipe_config(recipe, has_pool=pool is not None, seed=seed, **overrides)
        Q_train, train_pairs = training_set(Q, range(len(rels)), rels, augmentation)
        result = fit(Q_train, D, train_pairs, config, negative_pool=pool, progress=progress)
        adapter, chosen, history = result.adapter, config.kind, result.history
        reason = f"recipe '{recipe}' trains a single {config.kind} adapter ({config.loss} loss, {config.epochs} epochs)"
        trained_config = config
    seconds = time.perf_counter() - start

    adapter.config = {
        "name": str(output) if output else "",
        "base_model": {"name": encoder.name, "dim": int(D.shape[1])},
        "similarity": "cosine",
        "training": {
            "recipe": recipe,
            "objective": objective if recipe == "default" else None,
            "selected": chosen,
            "reason": reason,
            "config": trained_config.to_dict() if trained_config else None,
            "negatives": str(negatives) if negatives else "training documents",
            "pseudo_queries": len(augmentation.rels) if augmentation else 0,
            "seconds": round(seconds, 2),
            "candidates": selection.candidates if selection else [],
            "validation": selection.validation if selection else {},
            "history": history.to_dict() if history else None,
            "learning_curve": curve,
        },
        "data": {
            "workspace": str(ws.path),
            "split": split,
            "n_queries": len(queries.query_ids),
            "n_pairs": len(pairs),
            "n_documents": len(corpus.doc_ids),
            "n_training_documents": len({d for _, d in pairs}),
            "coverage": round(coverage, 4),
            "offline_pseudo_query_share": round(offline_share, 4),
        },
    }
    path = save_adapter(adapter, output, overwrite=overwrite) if output is not None else None
    return TrainResult(adapter, path, recipe, chosen, reason, seconds, history, selection, curve)

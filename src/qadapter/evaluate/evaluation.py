"""The evaluate stage: score the base model and the adapted queries on the same queries, honestly.

``evaluate(workspace, split="test", adapter=...)`` searches the unchanged corpus vectors with the base query vectors
and with the adapted ones (exact cosine search, or a real vector store of :data:`qadapter.stores.STORES`), computes
the metrics per query, and compares the two with bootstrap confidence intervals and a paired randomization test
(:mod:`qadapter.evaluate.stats`). It also says when the test queries are offline pseudo-queries, and records what the
report draws: metric-vs-k curves, per-query rank changes and the score distributions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.adapters import Adapter, load_adapter
from qadapter.adapters.artifact import check_base_model
from qadapter.core.device import DEFAULT_PRECISION
from qadapter.core.metrics import default_metrics, evaluated_queries, parse_metric, per_query_scores
from qadapter.core.score_scale import map_threshold, share_above
from qadapter.data.types import Run
from qadapter.data.workspace import Workspace
from qadapter.encoders import DEFAULT_MODEL, Encoder, get_encoder
from qadapter.errors import QadapterError
from qadapter.evaluate import diagnostics as diag
from qadapter.evaluate.caveats import offline_share, pseudo_query_caveat
from qadapter.evaluate.retrieval import check_store, store_runs

#: retrieval depth: every run holds at least this many documents per query (the curves go from k = 1 to here)
MIN_DEPTH = 100
#: results per query whose scores the score-distribution and threshold checks look at (what a RAG app keeps)
SCORE_K = 10
#: the base-scale similarity cut-off whose mapped share the evaluation reports when the adapter records a mapping
SCORE_THRESHOLD = 0.5


def evaluate(
    workspace: str | Path | Workspace,
    split: str = "test",
    *,
    adapter: str | Path | Adapter | None = None,
    model: str | Encoder | None = None,
    metrics: Sequence[str] | None = None,
    store: str = "exact",
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = False,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
) -> dict[str, Any]:
    """Return ``{"split", "n_queries", "model", "store", "baseline": {...}, "adapted": {...}, "comparison": {...}}``.

    Also ``offline_share`` and ``caveat`` (a sentence when any test query is an offline pseudo-query, else None),
    ``curves``, ``rank_changes`` and ``score_distribution`` for the report. Without ``adapter`` only the base
    model is scored (``adapted`` equals ``baseline``). ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``) is where
    a model given by name encodes and exact search runs; ``precision`` is the dtype that model computes in.
    """
    from qadapter.core.device import resolve_device

    check_store(store)
    names = metric_names(metrics)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    loaded = load_adapter(adapter) if isinstance(adapter, str | Path) else adapter
    encoder = choose_encoder(model, loaded, device=device, precision=precision)
    corpus, queries = embed_split(ws, split, encoder, progress=progress)
    check_compatible(loaded, encoder, corpus.embeddings.shape[1])
    depth = min(max(max(parse_metric(m)[1] or MIN_DEPTH for m in names), MIN_DEPTH), len(corpus.doc_ids))
    vectors = {"baseline": queries.embeddings}
    vectors["adapted"] = loaded.transform(queries.embeddings) if loaded is not None else queries.embeddings
    runs = store_runs(
        store,
        ws,
        store_key(encoder),
        corpus,
        queries.query_ids,
        vectors,
        depth,
        device=resolve_device(device),
    )
    results = summarise(runs, queries.qrels, names, n_boot=n_boot, seed=seed)
    share = offline_share(evaluated_queries(queries.qrels), ws.queries())
    results = {
        "workspace": str(ws.path),
        "split": split,
        "n_queries": len(evaluated_queries(queries.qrels)),
        "model": encoder.name,
        "store": store,
        "adapter": str(adapter) if isinstance(adapter, str | Path) else None,
        **results,
        "offline_share": round(share, 4),
        "caveat": pseudo_query_caveat(share),
        "curves": {name: diag.metric_curves(queries.qrels, run, depth) for name, run in runs.items()},
        "rank_changes": rank_changes(runs, queries.qrels, depth),
        "score_distribution": score_distribution(runs, queries, corpus, vectors),
    }
    scale = score_scale_check(loaded, runs, queries.query_ids)
    if scale is not None:
        results["score_scale"] = scale
    return results


def metric_names(metrics: Sequence[str] | None) -> list[str]:
    """The metrics to compute (default: hit/recall/mrr/ndcg at 1, 3, 5, 10 and map), each checked."""
    names = list(metrics or default_metrics())
    for name in names:
        parse_metric(name)
    return names


def choose_encoder(
    model: str | Encoder | None,
    adapter: Adapter | None,
    *,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
) -> Encoder:
    """The given model, else the adapter's recorded base model, else the default model (a name is loaded on
    ``device`` at ``precision``)."""
    if model is None:
        model = (adapter.base_model if adapter is not None else None) or DEFAULT_MODEL
    return get_encoder(model, device=device, precision=precision) if isinstance(model, str) else model


def store_key(encoder: Encoder) -> str:
    """What a vector-store collection of the corpus is named by: the model's name, plus its precision when that is
    not float32 (so reduced-precision vectors never fill or read the float32 collection)."""
    precision = getattr(encoder, "precision", DEFAULT_PRECISION)
    return encoder.name if precision == DEFAULT_PRECISION else f"{encoder.name}@{precision}"


def embed_split(ws: Workspace, split: str, encoder: Encoder, *, progress: bool) -> tuple[Any, Any]:
    """The corpus and the ``split`` queries, embedded through the workspace cache."""
    from qadapter.embedding import embed_workspace

    corpus, splits = embed_workspace(ws, [split], model=encoder, progress=progress)
    return corpus, splits[split]


def check_compatible(adapter: Adapter | None, encoder: Encoder, dim: int) -> None:
    """Refuse an adapter trained for another dimension or another base model."""
    if adapter is None:
        return
    if adapter.dim != dim:
        raise QadapterError(
            f"adapter expects {adapter.dim}-dimensional embeddings but {encoder.name} gives "
            f"{dim}; evaluate with the base model the adapter was trained on"
        )
    check_base_model("adapter", adapter.base_model, encoder.name)


def summarise(
    runs: dict[str, Run], qrels: dict[str, dict[str, int]], metrics: list[str], *, n_boot: int, seed: int
) -> dict[str, Any]:
    """Mean metrics of both runs and their paired comparison."""
    from qadapter.evaluate.stats import compare

    per_query = {name: per_query_scores(qrels, run, metrics) for name, run in runs.items()}
    return {
        "baseline": {m: float(v.mean()) for m, v in per_query["baseline"].items()},
        "adapted": {m: float(v.mean()) for m, v in per_query["adapted"].items()},
        "comparison": compare(per_query["baseline"], per_query["adapted"], n_boot=n_boot, seed=seed),
    }


def rank_changes(runs: dict[str, Run], qrels: dict[str, dict[str, int]], depth: int) -> dict[str, Any]:
    """How far each query's first relevant document moved between the base and the adapted run."""
    base = diag.first_relevant_ranks(qrels, runs["baseline"], depth)
    adapted = diag.first_relevant_ranks(qrels, runs["adapted"], depth)
    return diag.rank_changes(base, adapted, depth)


def score_distribution(
    runs: dict[str, Run], queries: Any, corpus: Any, vectors: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Scores of relevant documents and of returned non-relevant ones, base and adapted."""
    index = {doc: i for i, doc in enumerate(corpus.doc_ids)}
    out: dict[str, Any] = {"bins": list(diag.SCORE_BINS), "k": SCORE_K}
    for name, run in runs.items():
        relevant = diag.relevant_pair_scores(
            queries.query_ids, vectors[name], queries.qrels, index, corpus.embeddings
        )
        out[name] = {
            "relevant": diag.distribution(relevant),
            "non_relevant": diag.distribution(diag.non_relevant_scores(queries.qrels, run, k=SCORE_K)),
        }
    return out


def score_scale_check(
    adapter: Adapter | None, runs: dict[str, Run], query_ids: Sequence[str]
) -> dict[str, Any] | None:
    """With a recorded ``score_scale``: the share of top results kept by a base cut-off and by its mapped one."""
    mapping = (adapter.config.get("score_scale") if adapter is not None else None) or None
    if mapping is None:
        return None
    mapped = map_threshold(mapping, SCORE_THRESHOLD)
    base = diag.top_scores(runs["baseline"], query_ids, k=SCORE_K)
    adapted = diag.top_scores(runs["adapted"], query_ids, k=SCORE_K)
    return {
        "k": SCORE_K,
        "threshold": SCORE_THRESHOLD,
        "mapped_threshold": round(mapped, 4),
        "base_share": round(share_above(base, SCORE_THRESHOLD), 4),
        "adapted_share": round(share_above(adapted, mapped), 4),
        "adapted_share_unmapped": round(share_above(adapted, SCORE_THRESHOLD), 4),
    }

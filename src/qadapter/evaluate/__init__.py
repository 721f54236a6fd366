"""The evaluate stage: score the base model and the adapted queries on the same queries, honestly.

``evaluate(workspace, split="test", adapter=...)`` searches the unchanged corpus vectors with the base query vectors
and with the adapted ones (exact cosine search, or a real persistent ChromaDB collection with ``store="chroma"``),
computes the metrics per query, and compares the two with bootstrap confidence intervals and a paired
randomization test (:mod:`qadapter.evaluate.stats`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.adapters import Adapter, load_adapter
from qadapter.core.metrics import default_metrics, evaluated_queries, parse_metric, per_query_scores
from qadapter.core.vectors import search_run
from qadapter.data.workspace import Workspace
from qadapter.encoders import DEFAULT_MODEL, Encoder, get_encoder
from qadapter.errors import QadapterError

STORES_FOR_EVAL = ("exact", "chroma")


def _store_runs(
    store: str,
    ws: Workspace,
    encoder: Encoder,
    corpus: Any,
    query_ids: list[str],
    vectors: dict[str, np.ndarray],
    depth: int,
) -> dict[str, dict[str, dict[str, float]]]:
    if store == "exact":
        return {
            name: search_run(query_ids, v, corpus.doc_ids, corpus.embeddings, k=depth)
            for name, v in vectors.items()
        }
    from qadapter.stores import get_store, store_run

    # One persistent collection per (model, corpus content); filled once, reused by later evaluations.
    digest = hashlib.sha256("\n".join(corpus.doc_ids).encode() + encoder.name.encode()).hexdigest()[:12]
    path = ws.state_dir / "chroma"
    name = f"qadapter-{digest}"
    with get_store("chroma", path, name, create=True) as db:
        if db.count() != len(corpus.doc_ids):
            for start in range(0, len(corpus.doc_ids), 2000):
                db.add(corpus.doc_ids[start : start + 2000], corpus.embeddings[start : start + 2000])
        return {name_: store_run(db, query_ids, v, k=depth) for name_, v in vectors.items()}


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
) -> dict[str, Any]:
    """Return ``{"split", "n_queries", "model", "store", "baseline": {...}, "adapted": {...}, "comparison": {...}}``.

    Without ``adapter`` only the base model is scored (``adapted`` equals ``baseline``).
    """
    from qadapter.embedding import embed_workspace
    from qadapter.evaluate.stats import compare

    if store not in STORES_FOR_EVAL:
        raise QadapterError(
            f"unknown store '{store}'; valid stores for evaluation: {', '.join(STORES_FOR_EVAL)}"
        )
    metrics = list(metrics or default_metrics())
    for m in metrics:
        parse_metric(m)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    loaded = load_adapter(adapter) if isinstance(adapter, str | Path) else adapter
    if model is None:
        model = (loaded.base_model if loaded is not None else None) or DEFAULT_MODEL
    encoder = get_encoder(model) if isinstance(model, str) else model
    corpus, splits = embed_workspace(ws, [split], model=encoder, progress=progress)
    queries = splits[split]
    if loaded is not None:
        if loaded.dim != corpus.embeddings.shape[1]:
            raise QadapterError(
                f"adapter expects {loaded.dim}-dimensional embeddings but {encoder.name} gives "
                f"{corpus.embeddings.shape[1]}; evaluate with the base model the adapter was trained on"
            )
        if loaded.base_model and loaded.base_model != encoder.name:
            raise QadapterError(
                f"adapter was trained on '{loaded.base_model}' but the embeddings here come from '{encoder.name}'; "
                f"pass --model {loaded.base_model}"
            )
    depth = max(max(parse_metric(m)[1] or 100 for m in metrics), 100)
    depth = min(depth, len(corpus.doc_ids))
    vectors = {"baseline": queries.embeddings}
    vectors["adapted"] = loaded.transform(queries.embeddings) if loaded is not None else queries.embeddings
    runs = _store_runs(store, ws, encoder, corpus, queries.query_ids, vectors, depth)
    per_query = {name: per_query_scores(queries.qrels, run, metrics) for name, run in runs.items()}
    comparison = compare(per_query["baseline"], per_query["adapted"], n_boot=n_boot, seed=seed)
    return {
        "workspace": str(ws.path),
        "split": split,
        "n_queries": len(evaluated_queries(queries.qrels)),
        "model": encoder.name,
        "store": store,
        "adapter": str(adapter) if isinstance(adapter, str | Path) else None,
        "baseline": {m: float(v.mean()) for m, v in per_query["baseline"].items()},
        "adapted": {m: float(v.mean()) for m, v in per_query["adapted"].items()},
        "comparison": comparison,
    }


__all__ = ["evaluate"]

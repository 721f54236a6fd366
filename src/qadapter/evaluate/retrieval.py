"""Where evaluation retrieves: exact numpy search, or any vector store of :data:`qadapter.stores.STORES`.

The list of choices is read from the stores registry, so a new store is evaluable (and offered by the CLI) without
an edit here.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from qadapter.core.vectors import search_run
from qadapter.data.types import Run
from qadapter.data.workspace import Workspace
from qadapter.errors import QadapterError
from qadapter.stores import STORES

#: every ``--store`` accepted by ``evaluate``: exact search, then each registered vector store
EVAL_STORES: tuple[str, ...] = ("exact", *STORES)
#: records added to a store per call while filling it
FILL_BATCH = 2000


def check_store(store: str) -> None:
    if store not in EVAL_STORES:
        raise QadapterError(f"unknown store '{store}'; valid stores for evaluation: {', '.join(EVAL_STORES)}")


def store_runs(
    store: str,
    ws: Workspace,
    model_name: str,
    corpus: Any,
    query_ids: Sequence[str],
    vectors: dict[str, np.ndarray],
    depth: int,
    *,
    device: str = "cpu",
) -> dict[str, Run]:
    """One run per entry of ``vectors`` (e.g. ``{"baseline": ..., "adapted": ...}``), top ``depth`` documents."""
    check_store(store)
    if store == "exact":
        options = _search_options(device)
        return {
            name: search_run(query_ids, v, corpus.doc_ids, corpus.embeddings, k=depth, **options)
            for name, v in vectors.items()
        }
    from qadapter.stores import get_store, store_run

    # One persistent collection per (model, corpus content); filled once, reused by later evaluations.
    digest = hashlib.sha256("\n".join(corpus.doc_ids).encode() + model_name.encode()).hexdigest()[:12]
    with get_store(store, ws.state_dir / store, f"qadapter-{digest}", create=True) as db:
        if db.count() != len(corpus.doc_ids):
            for start in range(0, len(corpus.doc_ids), FILL_BATCH):
                stop = start + FILL_BATCH
                db.add(corpus.doc_ids[start:stop], corpus.embeddings[start:stop])
        return {name: store_run(db, query_ids, v, k=depth) for name, v in vectors.items()}


def _search_options(device: str) -> dict[str, Any]:
    """Forward ``device`` to exact search once it accepts one (it runs on the CPU in numpy until then)."""
    return {"device": device} if "device" in inspect.signature(search_run).parameters else {}

"""The store registry: every backend by name, and the two things done with any of them (open one, query it)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qadapter.data.types import Run
from qadapter.errors import QadapterError
from qadapter.stores.base import StoreSpec, VectorStore

#: backend name -> its spec. Adding a backend is one file and one line here (the contract test reads this too).
STORES: dict[str, StoreSpec] = {
    "chroma": StoreSpec("qadapter.stores.chroma", "ChromaStore", "chromadb", "chroma"),
    "lancedb": StoreSpec("qadapter.stores.lancedb", "LanceDBStore", "lancedb", "lancedb"),
    "qdrant": StoreSpec("qadapter.stores.qdrant", "QdrantStore", "qdrant_client", "qdrant"),
}


def get_store(name: str, path: str | Path, collection: str, *, create: bool = False) -> VectorStore:
    """Open the collection ``collection`` of the local ``name`` store kept in the folder ``path``.

    With ``create=False`` (the default) a missing collection is an error that lists the collections there, so a
    typo never silently creates an empty one. Raises :class:`~qadapter.errors.MissingExtraError` naming the extra
    to install when the backend's client library is missing.
    """
    if name not in STORES:
        raise QadapterError(f"unknown vector store '{name}'; valid stores: {', '.join(STORES)}")
    spec = STORES[name]
    cls = getattr(importlib.import_module(spec.module), spec.cls)
    return cls(path, collection, create=create)


def store_run(
    store: VectorStore, query_ids: Sequence[str], query_embeddings: np.ndarray, *, k: int = 100
) -> Run:
    """Query ``store`` and return a TREC-style run, comparable with :func:`qadapter.core.vectors.search_run`.

    Use it to evaluate retrieval as the app sees it (the store's own, possibly approximate, index), e.g. with
    adapted query vectors: ``store_run(store, ids, adapter.transform(q), k=10)``.
    """
    if len(query_ids) != len(query_embeddings):
        raise QadapterError(f"got {len(query_ids)} query ids but {len(query_embeddings)} query embeddings")
    hits = store.query(query_embeddings, k=k)
    return {qid: dict(row) for qid, row in zip(query_ids, hits, strict=True)}

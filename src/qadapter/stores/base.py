"""The vector-store interface: the few things qadapter needs from the store a RAG app already uses.

qadapter reads a store's ids, documents and stored vectors (so the corpus is never re-embedded) and queries it with
adapted query vectors. Every backend (Chroma, LanceDB, Qdrant) implements this one small protocol, and one contract
test runs against all of them, so adding a backend means adding one file and one registry line.

Scores are cosine similarities (higher is better), the same scale as :func:`qadapter.core.vectors.search`, so a
store's results can be compared with qadapter's exact search.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from qadapter.errors import QadapterError


class StoreSpec(NamedTuple):
    """Everything about one backend: where its class lives, the client module it needs and the extra installing it."""

    module: str
    cls: str
    client: str
    extra: str


#: One page of records: ``(ids, documents, embeddings)``.
Page = tuple[list[str], list[str | None], np.ndarray]

#: One query's results: ``[(document_id, cosine_similarity), ...]``, best first.
Hits = list[tuple[str, float]]


@runtime_checkable
class VectorStore(Protocol):
    """A persistent collection of ``(id, document, embedding)`` records searched by cosine similarity."""

    #: Registry name of the backend (``"chroma"``, ``"lancedb"``, ``"qdrant"``).
    backend: str

    def add(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        documents: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Insert (or replace) records; ``embeddings`` is ``(len(ids), dim)``."""
        ...

    def pages(self, batch_size: int = 1000) -> Iterator[Page]:
        """Every record, ``batch_size`` at a time, as ``(ids, documents, embeddings)`` pages (never all at once)."""
        ...

    def read(self, batch_size: int = 1000) -> Page:
        """Every record as ``(ids, documents, embeddings)``, fetched ``batch_size`` records at a time."""
        ...

    def query(self, embeddings: np.ndarray, k: int = 10) -> list[Hits]:
        """Top-``k`` documents for each query vector, best first, scored by cosine similarity."""
        ...

    def count(self) -> int:
        """Number of records in the collection."""
        ...

    def close(self) -> None:
        """Release files and locks (local Qdrant allows one client per folder)."""
        ...

    def __enter__(self) -> VectorStore: ...

    def __exit__(self, *exc: object) -> None: ...


def check_batch(
    ids: Sequence[str],
    embeddings: np.ndarray,
    documents: Sequence[str] | None,
    metadatas: Sequence[Mapping[str, Any]] | None,
) -> np.ndarray:
    """Validate the arguments of :meth:`VectorStore.add` once for every backend; returns float32 embeddings."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise QadapterError(
            f"add() needs one embedding row per id: got {len(ids)} ids and embeddings of shape {vectors.shape}"
        )
    for name, values in (("documents", documents), ("metadatas", metadatas)):
        if values is not None and len(values) != len(ids):
            raise QadapterError(f"add() got {len(ids)} ids but {len(values)} {name}; pass one per id or none")
    if len(set(ids)) != len(ids):
        raise QadapterError("add() got duplicate ids; every record needs a unique id")
    return vectors


def check_query(embeddings: np.ndarray, dim: int | None) -> np.ndarray:
    """Return query vectors as a float32 ``(n, dim)`` array, explaining a dimension mismatch."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    if vectors.ndim != 2 or (dim is not None and vectors.shape[1] != dim):
        raise QadapterError(
            f"query vectors have shape {np.shape(embeddings)}, but the collection stores {dim}-dimensional "
            "vectors; embed the queries with the model that embedded the collection"
        )
    return vectors


def concat_pages(pages: Iterable[Page], dim: int | None) -> Page:
    """All pages as one ``(ids, documents, embeddings)``: what :meth:`VectorStore.read` returns."""
    ids: list[str] = []
    documents: list[str | None] = []
    vectors: list[np.ndarray] = []
    for page_ids, page_docs, page_vectors in pages:
        ids.extend(page_ids)
        documents.extend(page_docs)
        vectors.append(page_vectors)
    embeddings = np.concatenate(vectors) if vectors else np.zeros((0, dim or 0), dtype=np.float32)
    return ids, documents, embeddings.astype(np.float32, copy=False)

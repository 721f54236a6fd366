"""Qdrant in local mode (``QdrantClient(path=...)``, no server): extra ``qdrant``.

Qdrant point ids must be integers or UUIDs, so each record's own id is kept in the payload (``id``) next to
``document`` and ``metadata``, and the point id is a UUID derived from it (the same id always maps to the same
point, so adding it again replaces it). In cosine space Qdrant stores unit-length vectors, so :meth:`read` returns
normalised vectors; cosine scores and rankings are unchanged. Local mode allows one client per folder at a time:
call :meth:`QdrantStore.close` (or use ``with``) before opening the folder again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.core.extras import require
from qadapter.errors import QadapterError
from qadapter.stores.base import Hits, Page, check_batch, check_query, concat_pages

_NAMESPACE = uuid.UUID("6f1c0a52-3c1e-4f57-9a55-2a4d1d7c9e10")


def point_id(record_id: str) -> str:
    """The Qdrant point id (a UUID) of a record id."""
    return str(uuid.uuid5(_NAMESPACE, record_id))


class QdrantStore:
    """A collection in a local Qdrant folder; created with the first :meth:`add` when ``create=True``."""

    backend = "qdrant"

    def __init__(self, path: str | Path, collection: str, *, create: bool = False) -> None:
        qdrant_client = require(
            "qdrant_client", extra="qdrant", purpose="the Qdrant store", package="qdrant-client"
        )
        self._models = require(
            "qdrant_client.models", extra="qdrant", purpose="the Qdrant store", package="qdrant-client"
        )
        self.path = Path(path)
        self.name = collection
        if not create and not self.path.is_dir():
            raise QadapterError(
                f"{self.path}: no local Qdrant folder here; pass the path given to QdrantClient(path=...)"
            )
        self._client = qdrant_client.QdrantClient(path=str(self.path))
        self._exists = bool(self._client.collection_exists(collection))
        if not self._exists and not create:
            names = sorted(c.name for c in self._client.get_collections().collections)
            self._client.close()
            raise QadapterError(
                f"{self.path}: no Qdrant collection named '{collection}' (collections there: {', '.join(names) or 'none'})"
            )

    @property
    def dim(self) -> int | None:
        if not self._exists:
            return None
        vectors = self._client.get_collection(self.name).config.params.vectors
        if isinstance(vectors, dict):
            raise QadapterError(
                f"Qdrant collection '{self.name}' has named vectors {sorted(vectors)}; qadapter supports one unnamed vector"
            )
        return int(vectors.size)

    def add(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        documents: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        vectors = check_batch(ids, embeddings, documents, metadatas)
        if not len(ids):
            return
        models = self._models
        if not self._exists:
            self._client.create_collection(
                self.name,
                vectors_config=models.VectorParams(size=vectors.shape[1], distance=models.Distance.COSINE),
            )
            self._exists = True
        elif vectors.shape[1] != self.dim:
            raise QadapterError(
                f"collection '{self.name}' stores {self.dim}-dimensional vectors, got {vectors.shape[1]}-dimensional ones"
            )
        points = [
            models.PointStruct(
                id=point_id(record_id),
                vector=vectors[i].tolist(),
                payload={
                    "id": record_id,
                    "document": documents[i] if documents is not None else None,
                    "metadata": dict(metadatas[i]) if metadatas is not None else {},
                },
            )
            for i, record_id in enumerate(ids)
        ]
        for start in range(0, len(points), 512):
            self._client.upsert(self.name, points=points[start : start + 512])

    def pages(self, batch_size: int = 1000) -> Iterator[Page]:
        offset: Any = None
        while self._exists:
            points, offset = self._client.scroll(
                self.name, limit=batch_size, offset=offset, with_payload=True, with_vectors=True
            )
            if points:
                payloads = [point.payload or {} for point in points]
                yield (
                    [str(p.get("id", point.id)) for p, point in zip(payloads, points, strict=True)],
                    [p.get("document") for p in payloads],
                    np.asarray([point.vector for point in points], dtype=np.float32).reshape(len(points), -1),
                )
            if offset is None:
                return

    def read(self, batch_size: int = 1000) -> Page:
        return concat_pages(self.pages(batch_size), self.dim)

    def query(self, embeddings: np.ndarray, k: int = 10) -> list[Hits]:
        vectors = check_query(embeddings, self.dim)
        if not self._exists:
            return [[] for _ in range(len(vectors))]
        hits: list[Hits] = []
        for vector in vectors:
            found = self._client.query_points(
                self.name, query=vector.tolist(), limit=k, with_payload=["id"]
            ).points
            hits.append([(str((p.payload or {}).get("id", p.id)), float(p.score)) for p in found])
        return hits

    def count(self) -> int:
        return int(self._client.count(self.name, exact=True).count) if self._exists else 0

    def close(self) -> None:
        """Release the folder lock so another client (or this store reopened) can use it."""
        self._client.close()

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

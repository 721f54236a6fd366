"""Chroma (``chromadb.PersistentClient``): the default store, installed with qadapter.

Collections are created in cosine space and never with chromadb's default embedding function (it downloads a model
at run time); qadapter always passes vectors itself. To let ``collection.query(query_texts=...)`` embed and adapt
queries, see :class:`qadapter.integrations.chroma.AdapterEmbeddingFunction`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.core.extras import require
from qadapter.errors import QadapterError
from qadapter.stores.base import Hits, Page, check_batch, check_query, concat_pages


class ChromaStore:
    """A collection in a persistent Chroma folder."""

    backend = "chroma"

    def __init__(self, path: str | Path, collection: str, *, create: bool = False) -> None:
        chromadb = require("chromadb", extra="chroma", purpose="the Chroma store")
        self.path = Path(path)
        self.name = collection
        if not create and not self.path.is_dir():
            raise QadapterError(
                f"{self.path}: no Chroma folder here; pass the path given to chromadb.PersistentClient"
            )
        self._client = chromadb.PersistentClient(path=str(self.path))
        existing = [c.name for c in self._client.list_collections()]
        if collection in existing:
            # embedding_function=None: use stored vectors only, never chromadb's downloading default.
            self._collection = self._client.get_collection(collection, embedding_function=None)
        elif create:
            self._collection = self._client.create_collection(
                collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        else:
            raise QadapterError(
                f"{self.path}: no Chroma collection named '{collection}' (collections there: "
                f"{', '.join(sorted(existing)) or 'none'})"
            )
        # The raw JSON: parsing the configuration would need the collection's embedding function registered (e.g.
        # qadapter's own, in qadapter.integrations.chroma), and the store layer must not depend on integrations.
        config = getattr(self._collection, "configuration_json", None) or {}
        self._space = (config.get("hnsw") or {}).get("space") or "l2"

    @property
    def collection(self) -> Any:
        """The underlying ``chromadb`` collection."""
        return self._collection

    def add(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        documents: Sequence[str] | None = None,
        metadatas: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        vectors = check_batch(ids, embeddings, documents, metadatas)
        step = 1000  # below chromadb's maximum batch size
        for start in range(0, len(ids), step):
            end = start + step
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                documents=list(documents[start:end]) if documents is not None else None,
                metadatas=[dict(m) or None for m in metadatas[start:end]] if metadatas is not None else None,  # type: ignore[misc]
            )

    def pages(self, batch_size: int = 1000) -> Iterator[Page]:
        offset = 0
        while True:
            page = self._collection.get(include=["embeddings", "documents"], limit=batch_size, offset=offset)
            if not page["ids"]:
                return
            ids = list(page["ids"])
            yield (
                ids,
                list(page["documents"] or [None] * len(ids)),
                np.asarray(page["embeddings"], np.float32),
            )
            offset += len(ids)

    def read(self, batch_size: int = 1000) -> Page:
        return concat_pages(self.pages(batch_size), self._dim())

    def _dim(self) -> int | None:
        page: Any = self._collection.get(include=["embeddings"], limit=1)
        return len(page["embeddings"][0]) if page["ids"] else None

    def query(self, embeddings: np.ndarray, k: int = 10) -> list[Hits]:
        vectors = check_query(embeddings, self._dim())
        n = min(k, self.count())
        if n == 0:
            return [[] for _ in range(len(vectors))]
        result: Any = self._collection.query(
            query_embeddings=vectors, n_results=n, include=["distances", "embeddings"]
        )
        hits: list[Hits] = []
        for q, ids, distances, found in zip(
            vectors, result["ids"], result["distances"], result["embeddings"], strict=True
        ):
            if self._space == "cosine":
                scores = [1.0 - float(d) for d in distances]
            else:  # l2 / ip collections: rank by the store, report cosine so scores compare across stores
                found = np.asarray(found, dtype=np.float32)
                denom = np.linalg.norm(found, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
                scores = (found @ q / np.maximum(denom, 1e-12)).tolist()
            hits.append(list(zip(ids, scores, strict=True)))
        return hits

    def count(self) -> int:
        return int(self._collection.count())

    def close(self) -> None:
        """Chroma keeps no lock on the folder; nothing to release."""

    def __enter__(self) -> ChromaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

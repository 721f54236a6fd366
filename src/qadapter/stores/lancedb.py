"""LanceDB (embedded, a local folder): extra ``lancedb``.

A table holds ``id``, ``document``, ``metadata`` (JSON text) and a fixed-size float32 ``vector`` column. Without a
vector index LanceDB searches exhaustively, so results match qadapter's exact search.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.core.extras import require
from qadapter.errors import QadapterError
from qadapter.stores.base import Hits, Page, check_batch, check_query, concat_pages

VECTOR = "vector"


class LanceDBStore:
    """A table in a LanceDB folder; created with the first :meth:`add` when ``create=True``."""

    backend = "lancedb"

    def __init__(self, path: str | Path, collection: str, *, create: bool = False) -> None:
        lancedb = require("lancedb", extra="lancedb", purpose="the LanceDB store")
        self._pa = require("pyarrow", extra="lancedb", purpose="the LanceDB store")
        self.path = Path(path)
        self.name = collection
        if not create and not self.path.is_dir():
            raise QadapterError(
                f"{self.path}: no LanceDB folder here; pass the path given to lancedb.connect"
            )
        self._db = lancedb.connect(str(self.path))
        self._table: Any = None
        try:
            self._table = self._db.open_table(collection)
        except (ValueError, FileNotFoundError):
            existing = _table_names(self._db)
        if self._table is None and not create:
            raise QadapterError(
                f"{self.path}: no LanceDB table named '{collection}' (tables there: {', '.join(sorted(existing)) or 'none'})"
            )

    @property
    def dim(self) -> int | None:
        if self._table is None:
            return None
        return int(self._table.schema.field(VECTOR).type.list_size)

    def _schema(self, dim: int) -> Any:
        pa = self._pa
        return pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("document", pa.string()),
                pa.field("metadata", pa.string()),
                pa.field(VECTOR, pa.list_(pa.float32(), dim)),
            ]
        )

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
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise QadapterError(
                f"table '{self.name}' stores {self.dim}-dimensional vectors, got {vectors.shape[1]}-dimensional ones"
            )
        pa = self._pa
        schema = self._schema(vectors.shape[1])
        batch = pa.table(
            {
                "id": list(ids),
                "document": list(documents) if documents is not None else [None] * len(ids),
                "metadata": [json.dumps(dict(m)) for m in metadatas]
                if metadatas is not None
                else ["{}"] * len(ids),
                VECTOR: pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1]),
            },
            schema=schema,
        )
        if self._table is None:
            self._table = self._db.create_table(self.name, schema=schema)
        self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(batch)

    def pages(self, batch_size: int = 1000) -> Iterator[Page]:
        if self._table is None:
            return
        query = self._table.search().select(["id", "document", VECTOR]).limit(None)
        for batch in query.to_batches(batch_size):  # a streaming reader: one batch in memory at a time
            column = batch.column(batch.schema.get_field_index(VECTOR))
            vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), self.dim)
            yield (
                [str(i) for i in batch.column(batch.schema.get_field_index("id")).to_pylist()],
                batch.column(batch.schema.get_field_index("document")).to_pylist(),
                vectors.astype(np.float32),
            )

    def read(self, batch_size: int = 1000) -> Page:
        return concat_pages(self.pages(batch_size), self.dim)

    def query(self, embeddings: np.ndarray, k: int = 10) -> list[Hits]:
        vectors = check_query(embeddings, self.dim)
        if self._table is None:
            return [[] for _ in range(len(vectors))]
        hits: list[Hits] = []
        for vector in vectors:
            found = (
                self._table.search(vector, vector_column_name=VECTOR)
                .distance_type("cosine")
                .limit(k)
                .select(["id", "_distance"])
                .to_arrow()
            )
            scores = [1.0 - float(d) for d in found.column("_distance").to_pylist()]
            hits.append(list(zip(found.column("id").to_pylist(), scores, strict=True)))
        return hits

    def count(self) -> int:
        return 0 if self._table is None else int(self._table.count_rows())

    def close(self) -> None:
        """LanceDB keeps no lock on the folder; nothing to release."""

    def __enter__(self) -> LanceDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _table_names(db: Any) -> list[str]:
    """Table names across lancedb versions (``list_tables`` returns a paged response in recent ones)."""
    if hasattr(db, "list_tables"):
        listed = db.list_tables()
        return list(getattr(listed, "tables", listed))
    return list(db.table_names())

"""A Chroma embedding function that adapts query texts only.

chromadb (1.x) embeds ``collection.add(documents=...)`` with ``embedding_function(input)`` and
``collection.query(query_texts=...)`` with ``embedding_function.embed_query(input)``. This class returns base-model
vectors from the first and adapted vectors from the second, so the stored corpus stays as it is::

    ef = AdapterEmbeddingFunction("my-adapter")          # base model read from the adapter
    collection = client.get_collection("docs", embedding_function=ef)
    collection.query(query_texts=["how do I ..."], n_results=10)

Older chromadb releases without ``embed_query`` call ``__call__`` for queries too, which would give base vectors;
on those (and for collections whose persisted embedding function conflicts with this one, e.g. one created with
chromadb's default), pass vectors yourself: ``collection.query(query_embeddings=ef.embed_query(texts))``, or use
:func:`query`. Never rely on chromadb's default embedding function here: it downloads a model at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chromadb.api.types as _chroma_types  # chromadb is a core dependency of qadapter
import chromadb.utils.embedding_functions as _chroma_efs

from qadapter.adapters import Adapter
from qadapter.encoders import Encoder
from qadapter.integrations._common import QueryAdapterEmbedder

NAME = "qadapter"


class AdapterEmbeddingFunction(_chroma_types.EmbeddingFunction[_chroma_types.Documents]):  # type: ignore[misc,name-defined]
    """Documents -> base-model vectors; queries -> adapter(base-model query vectors).

    ``adapter`` is an :class:`~qadapter.adapters.Adapter` or a saved adapter folder; ``encoder`` defaults to the
    adapter's base model. When built from a folder, the collection's persisted configuration records the folder and
    the model, so ``client.get_collection(name)`` rebuilds this function by itself once this module is imported.
    """

    def __init__(self, adapter: Adapter | str | Path, encoder: Encoder | str | None = None) -> None:
        self._embedder = QueryAdapterEmbedder(adapter, encoder)

    @property
    def adapter(self) -> Adapter:
        return self._embedder.adapter

    @property
    def encoder(self) -> Encoder:
        return self._embedder.encoder

    def __call__(self, input: Any) -> Any:  # noqa: A002 - chromadb's parameter name
        return list(self._embedder.embed_documents(list(input)))

    def embed_query(self, input: Any) -> Any:  # noqa: A002
        return list(self._embedder.embed_queries(list(input)))

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> Any:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        path = self._embedder.adapter_path
        return {"adapter_path": str(path.resolve()) if path else None, "model": self.encoder.name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> AdapterEmbeddingFunction:
        from qadapter.errors import QadapterError

        if not config.get("adapter_path"):
            raise QadapterError(
                "this collection's qadapter embedding function was created from an in-memory adapter; "
                "pass embedding_function=AdapterEmbeddingFunction(ADAPTER_FOLDER) to get_collection"
            )
        return AdapterEmbeddingFunction(config["adapter_path"], config.get("model"))

    def is_legacy(self) -> bool:
        # An in-memory adapter cannot be rebuilt from a config; chromadb then persists no config for it.
        return self._embedder.adapter_path is None


_chroma_efs.register_embedding_function(AdapterEmbeddingFunction)


def query(
    collection: Any, query_texts: list[str], embedding_function: AdapterEmbeddingFunction, **kwargs: Any
) -> Any:
    """``collection.query`` with adapted query vectors, whatever embedding function the collection persisted."""
    return collection.query(query_embeddings=embedding_function.embed_query(query_texts), **kwargs)

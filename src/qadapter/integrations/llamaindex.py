"""A LlamaIndex embedding model that adapts queries only (extra ``llamaindex``).

LlamaIndex embeds nodes with ``get_text_embedding*`` and retrieval queries with ``get_query_embedding``; this class
returns base-model vectors for the first and adapted vectors for the second, so an index built with the base model
stays valid::

    from qadapter.integrations.llamaindex import AdapterEmbedding

    index = VectorStoreIndex(nodes, embed_model=AdapterEmbedding("my-adapter"))
    index.as_retriever(similarity_top_k=10).retrieve("how do I ...?")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qadapter.adapters import Adapter
from qadapter.core.extras import require
from qadapter.encoders import Encoder
from qadapter.integrations._common import QueryAdapterEmbedder

_base = require(
    "llama_index.core.base.embeddings.base",
    extra="llamaindex",
    purpose="the LlamaIndex integration",
    package="llama-index-core",
)
_pydantic = require("pydantic", extra="llamaindex", purpose="the LlamaIndex integration")


class AdapterEmbedding(_base.BaseEmbedding):  # type: ignore[misc,name-defined]
    """``llama_index`` embedding model: texts/nodes -> base vectors, queries -> adapter(base query vectors).

    ``adapter`` is an :class:`~qadapter.adapters.Adapter` or a saved adapter folder; ``encoder`` (an encoder or a
    model spec) defaults to the adapter's base model.
    """

    _embedder: Any = _pydantic.PrivateAttr()

    def __init__(
        self,
        adapter: Adapter | str | Path,
        encoder: Encoder | str | None = None,
        *,
        embed_batch_size: int = 64,
    ) -> None:
        embedder = QueryAdapterEmbedder(adapter, encoder)
        super().__init__(model_name=f"{embedder.encoder.name}+qadapter", embed_batch_size=embed_batch_size)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "QadapterAdapterEmbedding"

    @property
    def adapter(self) -> Adapter:
        return self._embedder.adapter

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(list(texts)).tolist()

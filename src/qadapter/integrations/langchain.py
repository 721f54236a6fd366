"""LangChain embeddings that adapt queries only (extra ``langchain``).

``embed_documents`` gives the base model's vectors (what the vector store already holds); ``embed_query`` gives
adapted vectors. Any LangChain vector store calls the right one::

    from qadapter.integrations.langchain import AdapterEmbeddings

    embeddings = AdapterEmbeddings("my-adapter")
    store = Chroma(collection_name="docs", embedding_function=embeddings, persist_directory="chroma")
"""

from __future__ import annotations

from pathlib import Path

from qadapter.adapters import Adapter
from qadapter.core.extras import require
from qadapter.encoders import Encoder
from qadapter.integrations._common import QueryAdapterEmbedder

_embeddings = require(
    "langchain_core.embeddings",
    extra="langchain",
    purpose="the LangChain integration",
    package="langchain-core",
)


class AdapterEmbeddings(_embeddings.Embeddings):  # type: ignore[misc,name-defined]
    """``langchain_core`` embeddings: documents -> base vectors, queries -> adapter(base query vectors).

    ``adapter`` is an :class:`~qadapter.adapters.Adapter` or a saved adapter folder; ``encoder`` (an encoder or a
    model spec) defaults to the adapter's base model.
    """

    def __init__(self, adapter: Adapter | str | Path, encoder: Encoder | str | None = None) -> None:
        self._embedder = QueryAdapterEmbedder(adapter, encoder)

    @property
    def adapter(self) -> Adapter:
        return self._embedder.adapter

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._embedder.embed_queries([text])[0].tolist()

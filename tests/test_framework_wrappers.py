"""LlamaIndex and LangChain wrappers, used through the frameworks' own classes.

A keyword one-hot encoder makes the expected retrieval known by construction: the adapter swaps the "cat" and
"dog" axes, so a query about cats must retrieve the dog document, while documents keep their base vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from qadapter.adapters import Adapter
from qadapter.errors import MissingExtraError

VOCAB = ["cat", "dog", "fish", "bird"]
DOCUMENTS = ["dog food and leashes", "cat toys and scratching posts", "fish tanks and filters", "bird cages"]


class KeywordEncoder:
    """Deterministic fake: one axis per vocabulary word, 1 where the word occurs (plus a small constant)."""

    name = "keywords"
    dim = len(VOCAB)

    def encode(self, texts, *, kind="query", batch_size=64):
        out = np.full((len(texts), self.dim), 0.01, dtype=np.float32)
        for i, text in enumerate(texts):
            for j, word in enumerate(VOCAB):
                if word in text.lower():
                    out[i, j] = 1.0
        return out


def swap_cat_dog() -> Adapter:
    weight = np.eye(len(VOCAB))
    weight[[0, 1]] = weight[[1, 0]]
    config = {"base_model": {"name": KeywordEncoder.name, "dim": len(VOCAB)}}
    return Adapter("linear", len(VOCAB), {"weight": weight, "bias": np.zeros(len(VOCAB))}, config)


def test_langchain_vector_store_retrieves_with_adapted_queries() -> None:
    pytest.importorskip(
        "langchain_core", reason="langchain-core not installed (pip install 'qadapter[langchain]')"
    )
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    from qadapter.integrations.langchain import AdapterEmbeddings

    encoder = KeywordEncoder()
    embeddings = AdapterEmbeddings(swap_cat_dog(), encoder)
    assert isinstance(embeddings, Embeddings)
    np.testing.assert_allclose(
        embeddings.embed_documents(DOCUMENTS), encoder.encode(DOCUMENTS, kind="document")
    )
    np.testing.assert_allclose(embeddings.embed_query("a cat"), [0.01, 1.0, 0.01, 0.01])

    store = InMemoryVectorStore(embedding=embeddings)
    store.add_texts(DOCUMENTS)
    assert store.similarity_search("toys for my cat", k=1)[0].page_content == "dog food and leashes"
    assert store.similarity_search("fish", k=1)[0].page_content == "fish tanks and filters"


def test_llamaindex_retriever_uses_adapted_queries() -> None:
    pytest.importorskip(
        "llama_index.core", reason="llama-index-core not installed (pip install 'qadapter[llamaindex]')"
    )
    from llama_index.core import VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.schema import TextNode

    from qadapter.integrations.llamaindex import AdapterEmbedding

    encoder = KeywordEncoder()
    embed_model = AdapterEmbedding(swap_cat_dog(), encoder)
    assert isinstance(embed_model, BaseEmbedding)
    np.testing.assert_allclose(embed_model.get_text_embedding_batch(DOCUMENTS), encoder.encode(DOCUMENTS))
    np.testing.assert_allclose(embed_model.get_query_embedding("a cat"), [0.01, 1.0, 0.01, 0.01])

    nodes = [TextNode(text=text, id_=f"n{i}") for i, text in enumerate(DOCUMENTS)]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    hits = index.as_retriever(similarity_top_k=1).retrieve("toys for my cat")
    assert hits[0].node.get_content() == "dog food and leashes"


def test_wrappers_refuse_an_adapter_for_another_model() -> None:
    pytest.importorskip(
        "langchain_core", reason="langchain-core not installed (pip install 'qadapter[langchain]')"
    )
    from qadapter.errors import QadapterError
    from qadapter.integrations.langchain import AdapterEmbeddings

    adapter = Adapter.identity(4, {"base_model": {"name": "all-MiniLM-L6-v2", "dim": 384}})
    with pytest.raises(QadapterError, match="trained on base model 'all-MiniLM-L6-v2'"):
        AdapterEmbeddings(adapter, KeywordEncoder())


def test_missing_framework_names_the_extra(monkeypatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "langchain_core.embeddings", None)
    monkeypatch.delitem(sys.modules, "qadapter.integrations.langchain", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'qadapter\[langchain\]'"):
        importlib.import_module("qadapter.integrations.langchain")

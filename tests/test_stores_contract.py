"""One contract test for every vector store: what qadapter needs from a store, checked against exact search."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from qadapter.core.vectors import normalize, search, search_run
from qadapter.errors import QadapterError
from qadapter.stores import STORES, get_store, store_run

#: backend -> the client module its extra installs.
CLIENTS = {"chroma": "chromadb", "lancedb": "lancedb", "qdrant": "qdrant_client"}


def _backends() -> list:
    params = []
    for name in STORES:
        missing = importlib.util.find_spec(CLIENTS[name]) is None
        marks = (
            [pytest.mark.skip(reason=f"{CLIENTS[name]} not installed (pip install 'qadapter[{name}]')")]
            if missing
            else []
        )
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def test_every_backend_has_a_client_listed() -> None:
    assert set(CLIENTS) == set(STORES)


@pytest.fixture()
def records() -> tuple[list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = normalize(rng.normal(size=(40, 16)).astype(np.float32))
    ids = [f"doc-{i}" for i in range(40)]
    documents = [f"document number {i}" for i in range(40)]
    return ids, documents, vectors


@pytest.mark.integration
@pytest.mark.parametrize("backend", _backends())
def test_store_contract(backend: str, tmp_path, records) -> None:
    ids, documents, vectors = records
    path = tmp_path / backend

    with pytest.raises(QadapterError, match="no .*here|no .*named"):
        get_store(backend, path, "corpus")

    store = get_store(backend, path, "corpus", create=True)
    assert store.backend == backend
    assert store.count() == 0
    store.add(ids[:30], vectors[:30], documents[:30], [{"n": i} for i in range(30)])
    store.add(ids[30:], vectors[30:], documents[30:])
    # Adding an id again replaces its record instead of duplicating it.
    store.add(ids[:1], vectors[:1], ["replaced"])
    assert store.count() == 40
    with pytest.raises(QadapterError, match="one embedding row per id"):
        store.add(["x"], vectors[:2])
    store.close()

    # Reopen from disk: the records, their documents and their vectors are all there.
    store = get_store(backend, path, "corpus")
    read_ids, read_docs, read_vectors = store.read(batch_size=7)
    assert sorted(read_ids) == sorted(ids)
    order = [read_ids.index(i) for i in ids]
    assert [read_docs[j] for j in order] == ["replaced", *documents[1:]]
    # Some stores keep unit-length vectors in cosine space; the direction is what must survive.
    np.testing.assert_allclose(normalize(read_vectors[order]), vectors, atol=1e-5)

    # Querying gives qadapter's exact top-k with cosine scores.
    queries = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    hits = store.query(queries, k=5)
    idx, scores = search(queries, vectors, k=5)
    assert len(hits) == 5
    for row, expected, expected_scores in zip(hits, idx, scores, strict=True):
        assert [doc_id for doc_id, _ in row] == [ids[j] for j in expected]
        np.testing.assert_allclose([s for _, s in row], expected_scores, atol=1e-4)
    run = store_run(store, [f"q{i}" for i in range(5)], queries, k=5)
    exact = search_run([f"q{i}" for i in range(5)], queries, ids, vectors, k=5)
    assert {q: list(docs) for q, docs in run.items()} == {q: list(docs) for q, docs in exact.items()}
    with pytest.raises(QadapterError, match="dimensional"):
        store.query(np.ones((1, 8), dtype=np.float32), k=3)
    store.close()


def test_unknown_store_lists_valid_choices(tmp_path) -> None:
    with pytest.raises(QadapterError, match="valid stores: chroma, lancedb, qdrant"):
        get_store("pinecone", tmp_path, "x")


@pytest.mark.parametrize(
    ("backend", "module", "extra"), [("lancedb", "lancedb", "lancedb"), ("qdrant", "qdrant_client", "qdrant")]
)
def test_missing_client_names_the_extra(monkeypatch, tmp_path, backend: str, module: str, extra: str) -> None:
    import sys

    from qadapter.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'qadapter\[{extra}\]'"):
        get_store(backend, tmp_path, "corpus", create=True)

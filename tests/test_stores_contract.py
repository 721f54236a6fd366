"""One contract test for every vector store: what qadapter needs from a store, checked against exact search."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from qadapter.core.vectors import normalize, search, search_run
from qadapter.errors import QadapterError
from qadapter.stores import STORES, get_store, store_run


def _backends() -> list:
    """Every registered store (read from the registry itself, so a new store is tested without editing this file)."""
    params = []
    for name, spec in STORES.items():
        missing = importlib.util.find_spec(spec.client) is None
        reason = f"{spec.client} not installed (pip install 'qadapter[{spec.extra}]')"
        params.append(pytest.param(name, marks=[pytest.mark.skip(reason=reason)] if missing else [], id=name))
    return params


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


@pytest.mark.parametrize("backend", list(STORES))
def test_missing_client_names_the_extra(monkeypatch, tmp_path, backend: str) -> None:
    import sys

    from qadapter.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, STORES[backend].client, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'qadapter\[{STORES[backend].extra}\]'"):
        get_store(backend, tmp_path, "corpus", create=True)


class StoredVectors:
    """An encoder that gives each document the vector the store holds for it (so the import check passes)."""

    name = "stored"
    dim = 16

    def __init__(self, documents: list[str], vectors: np.ndarray) -> None:
        self.table = dict(zip(documents, vectors, strict=True))

    def encode(self, texts, *, kind="query", batch_size=64) -> np.ndarray:  # type: ignore[no-untyped-def]
        return np.stack([self.table[t] for t in texts])


@pytest.mark.integration
@pytest.mark.parametrize("backend", _backends())
def test_import_streams_the_store_in_pages(backend: str, tmp_path, records, monkeypatch) -> None:
    """``import --from-store`` never reads a collection at once: only ``pages()`` is used, one page at a time."""
    from qadapter.embedding import embed_corpus
    from qadapter.stores.importing import import_from_store

    ids, documents, vectors = records
    with get_store(backend, tmp_path / backend, "corpus", create=True) as store:
        store.add(ids, vectors, documents)
    store = get_store(backend, tmp_path / backend, "corpus")
    cls = type(store)
    monkeypatch.setattr(cls, "read", lambda self, batch_size=1000: pytest.fail("read() loads every record"))
    sizes: list[int] = []
    real_pages = cls.pages

    def pages(self, batch_size=1000):  # type: ignore[no-untyped-def]
        for page in real_pages(self, batch_size):
            sizes.append(len(page[0]))
            yield page

    monkeypatch.setattr(cls, "pages", pages)
    encoder = StoredVectors(documents, vectors)
    ws = import_from_store(store, tmp_path / "ws", encoder, batch_size=7, check_sample=4)
    store.close()
    assert max(sizes) == 7 and sum(sizes) == 2 * 40  # a sampling pass and a writing pass, 7 records per page
    embedded = embed_corpus(ws, encoder)
    order = [embedded.doc_ids.index(i) for i in ids]
    np.testing.assert_allclose(normalize(embedded.embeddings[order]), vectors, atol=1e-5)


def test_the_store_layer_does_not_import_integrations() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qadapter.stores, qadapter.stores.importing;"
        "[__import__(spec.module) for spec in qadapter.stores.STORES.values()];"
        "print(sorted(m for m in sys.modules if m.startswith('qadapter.integrations')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

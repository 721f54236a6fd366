"""End to end with a real persistent Chroma collection and the real bundled model: import without re-embedding,
train, reopen from disk and query through the adapter's embedding function."""

from __future__ import annotations

import numpy as np
import pytest

from qadapter.adapters import Adapter, save_adapter
from qadapter.core.vectors import search
from qadapter.data import Query
from qadapter.embedding import embed_workspace
from qadapter.errors import QadapterError
from qadapter.stores import get_store
from qadapter.stores.importing import import_from_store

pytestmark = pytest.mark.integration

FACTS: list[tuple[str, str]] = [
    ("Paris", "the capital of France"),
    ("Berlin", "the capital of Germany"),
    ("Madrid", "the capital of Spain"),
    ("Rome", "the capital of Italy"),
    ("Tokyo", "the capital of Japan"),
    ("Canberra", "the capital of Australia"),
    ("Ottawa", "the capital of Canada"),
    ("Nairobi", "the capital of Kenya"),
    ("The Nile", "the longest river in Africa"),
    ("The Amazon", "the largest rainforest on Earth"),
    ("Mount Everest", "the highest mountain above sea level"),
    ("The Pacific", "the largest ocean on the planet"),
    ("The Sahara", "a hot desert in northern Africa"),
    ("Antarctica", "the coldest continent"),
    ("Jupiter", "the largest planet in the solar system"),
    ("Mars", "the red planet that rovers explore"),
    ("The Moon", "the natural satellite of the Earth"),
    ("The Sun", "the star at the centre of the solar system"),
    ("Photosynthesis", "how plants turn light into chemical energy"),
    ("DNA", "the molecule that carries genetic information"),
    ("The heart", "the organ that pumps blood through the body"),
    ("Insulin", "a hormone that regulates blood sugar"),
    ("Penicillin", "an antibiotic discovered by Alexander Fleming"),
    ("Vaccines", "a way to train the immune system against disease"),
    ("Python", "a programming language known for readable code"),
    ("Rust", "a systems programming language focused on memory safety"),
    ("SQL", "a language for querying relational databases"),
    ("Git", "a version control system for source code"),
    ("HTTP", "the protocol that web browsers use to fetch pages"),
    ("A compiler", "a program that translates source code into machine code"),
    ("A hash table", "a data structure with fast key lookups"),
    ("Binary search", "an algorithm that halves a sorted list at each step"),
    ("The violin", "a string instrument played with a bow"),
    ("The piano", "a keyboard instrument with hammers and strings"),
    ("Jazz", "a music genre born in New Orleans"),
    ("Sushi", "a Japanese dish of vinegared rice and raw fish"),
    ("Pizza", "an Italian flatbread baked with tomato and cheese"),
    ("Coffee", "a drink brewed from roasted beans"),
    ("Chess", "a board game of strategy with kings and queens"),
    ("Football", "a sport where two teams kick a ball into goals"),
    ("Tennis", "a racket sport played on a court with a net"),
    ("The marathon", "a running race of about forty-two kilometres"),
    ("The Great Wall", "a long fortification across northern China"),
    ("The Eiffel Tower", "a wrought-iron tower in Paris"),
    ("The pyramids of Giza", "ancient tombs built for Egyptian pharaohs"),
    ("The Colosseum", "an ancient amphitheatre in Rome"),
    ("Shakespeare", "the playwright who wrote Hamlet"),
    ("Newton", "the physicist who described universal gravitation"),
    ("Einstein", "the physicist who developed the theory of relativity"),
    ("Marie Curie", "the scientist who pioneered research on radioactivity"),
]
DOC_IDS = [f"d{i:02d}" for i in range(len(FACTS))]
DOCUMENTS = [f"{subject} is {predicate}." for subject, predicate in FACTS]
QUERIES = [f"what is {predicate}?" for _, predicate in FACTS]


class CountingEncoder:
    """The real encoder, counting how many texts of each kind it embeds."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.counts = {"query": 0, "document": 0}

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts, *, kind="query", batch_size=64):
        self.counts[kind] += len(texts)
        return self.inner.encode(texts, kind=kind, batch_size=batch_size)


@pytest.fixture(scope="module")
def encoder():
    from qadapter.encoders import get_encoder

    return get_encoder()


@pytest.fixture(scope="module")
def doc_vectors(encoder) -> np.ndarray:
    return encoder.encode(DOCUMENTS, kind="document")


def fit_linear(query_vectors: np.ndarray, doc_vectors: np.ndarray, pairs, encoder) -> Adapter:
    """Least squares from each query to its document, ridge-regularised towards the identity map."""
    rows, cols = np.asarray(pairs).T
    q, d = query_vectors[rows], doc_vectors[cols]
    dim = q.shape[1]
    lam = 0.1
    weight = np.linalg.solve(q.T @ q + lam * np.eye(dim), q.T @ d + lam * np.eye(dim)).T
    config = {"base_model": {"name": encoder.name, "dim": dim}}
    return Adapter("linear", dim, {"weight": weight, "bias": np.zeros(dim)}, config)


def test_train_from_chroma_and_query_through_the_adapter(tmp_path, encoder, doc_vectors) -> None:
    import chromadb

    from qadapter.integrations.chroma import AdapterEmbeddingFunction
    from qadapter.train import fit_adapter

    # The user's collection, made with chromadb itself and the base model's document vectors.
    chroma_path = tmp_path / "chroma"
    client = chromadb.PersistentClient(path=str(chroma_path))
    made = client.create_collection(
        "facts", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    made.add(ids=DOC_IDS, embeddings=doc_vectors, documents=DOCUMENTS)
    del made, client

    # Import: corpus and cached vectors come from the collection; only a small sample is re-embedded to check them.
    counting = CountingEncoder(encoder)
    with get_store("chroma", chroma_path, "facts") as store:
        ws = import_from_store(store, tmp_path / "ws", counting, check_sample=8)
    assert counting.counts == {"query": 0, "document": 8}
    assert list(ws.corpus()) == DOC_IDS

    # The embed stage finds every document vector in the cache and embeds only the queries.
    ws.write_queries(Query(f"q{i:02d}", text) for i, text in enumerate(QUERIES))
    ws.write_qrels("train", {f"q{i:02d}": {doc_id: 1} for i, doc_id in enumerate(DOC_IDS)})
    corpus, splits = embed_workspace(ws, ["train"], model=counting)
    assert counting.counts == {"query": len(QUERIES), "document": 8}
    np.testing.assert_allclose(corpus.embeddings, doc_vectors, atol=1e-6)

    # Train on the imported corpus vectors.
    train = splits["train"]
    pairs = train.pairs(corpus.index())
    assert len(pairs) == len(QUERIES)
    # qadapter's own trainer (a single contrastive linear fit: too few queries here for validation-based choice)
    adapter = fit_adapter(train.embeddings, corpus.embeddings, pairs, recipe="contrastive")
    assert adapter.kind == "linear" and not np.allclose(adapter.tensors["weight"], np.eye(adapter.dim))
    adapter.config["base_model"] = {"name": encoder.name, "dim": adapter.dim}
    adapter_path = save_adapter(adapter, tmp_path / "adapter")
    query_vectors = encoder.encode(QUERIES, kind="query")

    # Reopen the collection from disk and query with texts through the adapter embedding function.
    client = chromadb.PersistentClient(path=str(chroma_path))
    ef = AdapterEmbeddingFunction(adapter_path, encoder)
    collection = client.get_collection("facts", embedding_function=ef)
    result = collection.query(query_texts=QUERIES, n_results=10, include=["distances"])

    adapted = adapter.transform(query_vectors)
    expected_idx, expected_scores = search(adapted, doc_vectors, k=10)
    _, all_scores = search(adapted, doc_vectors, k=len(DOC_IDS))
    for got_ids, got_distances, idx, scores, row in zip(
        result["ids"], result["distances"], expected_idx, expected_scores, all_scores, strict=True
    ):
        np.testing.assert_allclose(1.0 - np.asarray(got_distances), scores, atol=1e-4)
        for rank, (got, want) in enumerate(zip(got_ids, idx, strict=True)):
            tied = np.sum(np.abs(row - scores[rank]) < 1e-4) > 1  # HNSW may order equal scores either way
            assert got == DOC_IDS[want] or tied, f"rank {rank}: chroma {got}, exact {DOC_IDS[want]}"

    # The adapter changed the query vectors, and adding documents still stores plain base-model vectors.
    assert not np.allclose(ef.embed_query(QUERIES[:1])[0], query_vectors[0], atol=1e-3)
    collection.add(ids=["extra"], documents=["Lisbon is the capital of Portugal."])
    stored = collection.get(ids=["extra"], include=["embeddings"])["embeddings"][0]
    base = encoder.encode(["Lisbon is the capital of Portugal."], kind="document")[0]
    np.testing.assert_allclose(stored, base, atol=1e-5)


def test_import_refuses_vectors_from_another_model(tmp_path, encoder, doc_vectors) -> None:
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(doc_vectors.shape[1],) * 2))
    with get_store("chroma", tmp_path / "rotated", "facts", create=True) as store:
        store.add(DOC_IDS, doc_vectors @ rotation.astype(np.float32), DOCUMENTS)
        with pytest.raises(QadapterError, match="do not match the model 'all-MiniLM-L6-v2'.*--model"):
            import_from_store(store, tmp_path / "ws", encoder, check_sample=4)
    assert not (tmp_path / "ws" / "corpus.jsonl").exists()

    with get_store("chroma", tmp_path / "small", "facts", create=True) as store:
        store.add(DOC_IDS[:3], np.eye(3, 16, dtype=np.float32), DOCUMENTS[:3])
        with pytest.raises(QadapterError, match="16-dimensional vectors but the model .* gives 384"):
            import_from_store(store, tmp_path / "ws", encoder)


def test_import_needs_document_texts(tmp_path, encoder, doc_vectors) -> None:
    with get_store("chroma", tmp_path / "chroma", "facts", create=True) as store:
        store.add(DOC_IDS[:2], doc_vectors[:2])
        with pytest.raises(QadapterError, match="no stored document text"):
            import_from_store(store, tmp_path / "ws", encoder)


def test_adapter_must_match_the_encoder(encoder) -> None:
    from qadapter.integrations.chroma import AdapterEmbeddingFunction

    other = Adapter.identity(
        encoder.dim, {"base_model": {"name": "openai:text-embedding-3-small", "dim": 384}}
    )
    with pytest.raises(QadapterError, match="trained on base model 'openai:text-embedding-3-small'"):
        AdapterEmbeddingFunction(other, encoder)


def test_collection_created_with_the_adapter_function_reopens_by_itself(
    tmp_path, encoder, doc_vectors
) -> None:
    import chromadb

    from qadapter.integrations.chroma import AdapterEmbeddingFunction

    query_vectors = encoder.encode(QUERIES[:10], kind="query")
    adapter_path = save_adapter(
        fit_linear(query_vectors, doc_vectors[:10], [(i, i) for i in range(10)], encoder),
        tmp_path / "adapter",
    )
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    ef = AdapterEmbeddingFunction(adapter_path)
    made = client.create_collection(
        "facts", embedding_function=ef, configuration={"hnsw": {"space": "cosine"}}
    )
    made.add(ids=DOC_IDS[:10], documents=DOCUMENTS[:10])  # embedded by the function: base document vectors
    np.testing.assert_allclose(made.get(include=["embeddings"])["embeddings"], doc_vectors[:10], atol=1e-5)

    reopened = chromadb.PersistentClient(path=str(tmp_path / "chroma")).get_collection("facts")
    result = reopened.query(query_texts=QUERIES[:3], n_results=1, include=["distances"])
    expected_idx, expected_scores = search(ef.embed_query(QUERIES[:3]), doc_vectors[:10], k=1)
    assert [row[0] for row in result["ids"]] == [DOC_IDS[i] for i in expected_idx[:, 0]]
    np.testing.assert_allclose(1.0 - np.asarray(result["distances"])[:, 0], expected_scores[:, 0], atol=1e-4)


def test_store_reports_cosine_scores_for_l2_collections(tmp_path, doc_vectors) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    client.create_collection("l2facts", embedding_function=None).add(ids=DOC_IDS, embeddings=doc_vectors)
    with get_store("chroma", tmp_path / "chroma", "l2facts") as store:
        hits = store.query(doc_vectors[:3] + 0.01, k=3)
    idx, scores = search(doc_vectors[:3] + 0.01, doc_vectors, k=3)
    for row, expected, expected_scores in zip(hits, idx, scores, strict=True):
        assert [doc_id for doc_id, _ in row] == [DOC_IDS[j] for j in expected]
        np.testing.assert_allclose([s for _, s in row], expected_scores, atol=1e-4)


def test_query_helper_for_collections_made_with_chromas_default_function(
    tmp_path, encoder, doc_vectors
) -> None:
    """The common case: a collection created with chromadb's default function (never called here: vectors are
    passed in). chromadb refuses a second embedding function on it, so queries go through ``query``."""
    import chromadb

    from qadapter.integrations.chroma import AdapterEmbeddingFunction, query

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    client.create_collection("facts").add(ids=DOC_IDS, embeddings=doc_vectors, documents=DOCUMENTS)
    query_vectors = encoder.encode(QUERIES, kind="query")
    adapter = fit_linear(query_vectors, doc_vectors, [(i, i) for i in range(len(DOC_IDS))], encoder)
    ef = AdapterEmbeddingFunction(adapter, encoder)
    with pytest.raises(ValueError, match="conflict"):
        client.get_collection("facts", embedding_function=ef)

    collection = client.get_collection("facts", embedding_function=None)
    result = query(collection, QUERIES[:5], ef, n_results=3)
    expected_idx, _ = search(adapter.transform(query_vectors[:5]), doc_vectors, k=3)
    assert result["ids"] == [[DOC_IDS[j] for j in row] for row in expected_idx]

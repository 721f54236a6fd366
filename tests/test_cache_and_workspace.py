"""The embedding cache (each text encoded once, interrupted encodes resume) and the workspace readers and writers
(every malformed input names its file and line)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qadapter.data import Document, Query, Workspace, read_corpus, read_qrels, read_queries
from qadapter.data.atomic import atomic_open
from qadapter.embedding import CACHE_DIR, embed_workspace
from qadapter.encoders import EmbeddingCache, Encoder, embed
from qadapter.errors import ArtifactError, DataError


class CountingEncoder:
    """Deterministic fake: each (kind, text) maps to a fixed pseudo-random vector seeded by its hash.

    Counts how often each text is encoded and can fail after ``fail_after`` calls (an interrupted run).
    """

    def __init__(self, name: str = "fake", dim: int = 8, fail_after: int | None = None) -> None:
        self.name = name
        self.dim = dim
        self.fail_after = fail_after
        self.calls = 0
        self.encoded: list[str] = []

    @staticmethod
    def vector(text: str, kind: str = "query", dim: int = 8) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(f"{kind}:{text}".encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=dim).astype(np.float32)

    def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.calls += 1
        self.encoded.extend(texts)
        return np.stack([self.vector(t, kind, self.dim) for t in texts])


def expected(texts: Sequence[str], kind: str = "query", dim: int = 8) -> np.ndarray:
    return np.stack([CountingEncoder.vector(t, kind, dim) for t in texts])


def test_fake_encoder_follows_the_protocol() -> None:
    assert isinstance(CountingEncoder(), Encoder)


# -- embed() + EmbeddingCache ------------------------------------------------------------------------------------


def test_each_distinct_text_is_encoded_once(tmp_path: Path) -> None:
    texts = ["alpha", "beta", "alpha", "gamma", "beta", "alpha"]
    encoder = CountingEncoder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        out = embed(encoder, texts, kind="query", cache=cache)
        assert sorted(encoder.encoded) == ["alpha", "beta", "gamma"]
        assert len(cache) == 3
    np.testing.assert_array_equal(out, expected(texts))
    assert out.dtype == np.float32


def test_a_second_call_encodes_nothing(tmp_path: Path) -> None:
    texts = [f"text {i}" for i in range(50)]
    first = CountingEncoder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        a = embed(first, texts, kind="document", cache=cache)
    second = CountingEncoder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:  # reopened from disk
        b = embed(second, list(reversed(texts)), kind="document", cache=cache)
    assert len(first.encoded) == 50 and second.encoded == [] and second.calls == 0
    np.testing.assert_array_equal(b, a[::-1])


def test_cache_keys_separate_model_and_kind(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        embed(CountingEncoder("m1"), ["same text"], kind="query", cache=cache)
        as_document = CountingEncoder("m1")
        docs = embed(as_document, ["same text"], kind="document", cache=cache)
        other_model = CountingEncoder("m2")
        embed(other_model, ["same text"], kind="query", cache=cache)
        assert as_document.encoded == ["same text"] and other_model.encoded == ["same text"]
        assert len(cache) == 3
    np.testing.assert_array_equal(docs, expected(["same text"], "document"))


def test_an_interrupted_encode_resumes_with_only_the_rest(tmp_path: Path) -> None:
    texts = [f"passage {i}" for i in range(1000)]
    # embed() hands the encoder 256 texts per call (4 batches of 64) and commits each call to the cache
    broken = CountingEncoder(fail_after=2)
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache, pytest.raises(KeyboardInterrupt):
        embed(broken, texts, kind="document", cache=cache, batch_size=64)
    assert len(broken.encoded) == 512

    resumed = CountingEncoder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        assert len(cache) == 512
        out = embed(resumed, texts, kind="document", cache=cache, batch_size=64)
    assert sorted(resumed.encoded) == sorted(texts[512:])
    np.testing.assert_array_equal(out, expected(texts, "document"))


def test_embed_without_a_cache_and_with_no_texts() -> None:
    encoder = CountingEncoder(dim=5)
    out = embed(encoder, ["x", "y", "x"], kind="query")
    assert encoder.encoded == ["x", "y"]
    np.testing.assert_array_equal(out, expected(["x", "y", "x"], dim=5))
    empty = embed(encoder, [], kind="query")
    assert empty.shape == (0, 5) and empty.dtype == np.float32


def test_cached_vectors_of_mixed_dimensions_are_an_artifact_error(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        cache.put_many("m", "query", ["a"], expected(["a"], dim=8))
        with pytest.raises(ArtifactError, match="delete the cache"):
            cache.put_many("m", "query", ["b"], expected(["b"], dim=16))
        np.testing.assert_array_equal(
            embed(CountingEncoder("m"), ["a"], kind="query", cache=cache), expected(["a"])
        )


def test_a_cache_from_a_model_of_another_dimension_is_an_artifact_error(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        cache.put_many("m", "query", ["a"], expected(["a"], dim=8))
        with pytest.raises(ArtifactError, match="delete the cache"):
            embed(CountingEncoder("m", dim=16), ["a", "b"], kind="query", cache=cache)


def test_an_unreadable_cache_file_is_an_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.mkdir()
    (path / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ArtifactError, match="cache is unreadable .*delete it to rebuild"):
        EmbeddingCache(path)
    (tmp_path / "file").write_bytes(b"a version-1 cache was one file")
    with pytest.raises(ArtifactError, match="cache is unreadable .*delete it to rebuild"):
        EmbeddingCache(tmp_path / "file")


# -- workspace: round trip ---------------------------------------------------------------------------------------


DOCS = [
    Document("d1", "Solar panels on the roof.", "Energy", {"page": 3}),
    Document("d2", "Recycled aluminium — 100 %.", ""),
    Document("d3", "Water use fell by 5 percent.", "Water"),
]
QUERIES = [Query("q1", "how much solar?", {"source": "llm"}), Query("q2", "aluminium?"), Query("q3", "water")]
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}, "q3": {"d3": 1}}


def make_workspace(
    path: Path, encoder_splits: dict[str, dict[str, dict[str, int]]] | None = None
) -> Workspace:
    ws = Workspace(path)
    ws.write_corpus(DOCS)
    ws.write_queries(QUERIES)
    for split, qrels in (encoder_splits or {"train": QRELS, "test": {"q3": {"d3": 1}}}).items():
        ws.write_qrels(split, qrels)
    return ws


def test_workspace_round_trip(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    assert ws.exists() and ws.splits() == ["test", "train"]
    corpus = ws.corpus()
    assert list(corpus) == ["d1", "d2", "d3"]
    assert corpus["d1"] == DOCS[0] and corpus["d2"] == DOCS[1]
    assert corpus["d1"].full_text == "Energy\nSolar panels on the roof."
    assert ws.queries() == {q.id: q for q in QUERIES}
    assert ws.qrels("train") == QRELS
    assert ws.corpus_path.read_text(encoding="utf-8").splitlines()[1] == json.dumps(
        {"_id": "d2", "title": "", "text": "Recycled aluminium — 100 %."}, ensure_ascii=False
    )
    assert ws.qrels_path("test").read_text() == "query-id\tcorpus-id\tscore\nq3\td3\t1\n"


def test_atomic_open_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    before = ws.corpus_path.read_bytes()

    def broken() -> object:
        yield DOCS[0]
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        ws.write_corpus(broken())
    assert ws.corpus_path.read_bytes() == before
    assert sorted(p.name for p in ws.path.iterdir()) == ["corpus.jsonl", "qrels", "queries.jsonl"]
    with atomic_open(tmp_path / "new" / "f.txt") as handle:
        handle.write("ok")
    assert (tmp_path / "new" / "f.txt").read_text() == "ok"


# -- workspace: malformed input ----------------------------------------------------------------------------------


def write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = '{"_id": "d1", "text": "fine"}'


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([GOOD, "", '{"_id": "d2", "text": "x"', GOOD], r"corpus.jsonl:3: not valid JSON"),
        ([GOOD, '["d2", "text"]'], r"corpus.jsonl:2: expected a JSON object, got list"),
        (
            [GOOD, '{"_id": "d2", "body": "x"}'],
            r"corpus.jsonl:2: missing field 'text' \(fields present: \['_id', 'body'\]\)",
        ),
        (['{"text": "no id"}'], r"corpus.jsonl:1: missing field '_id'"),
        ([GOOD, '{"_id": "d2", "text": 5}'], r"corpus.jsonl:2: field 'text' must be a string, got int"),
        (
            [GOOD, '{"_id": "d2", "text": "x", "title": ["t"]}'],
            r"corpus.jsonl:2: field 'title' must be a string",
        ),
        (
            [GOOD, '{"_id": "d2", "text": "x", "metadata": "m"}'],
            r"corpus.jsonl:2: field 'metadata' must be an object",
        ),
        ([GOOD, '{"_id": "d9", "text": "a"}', GOOD], r"corpus.jsonl:3: duplicate document id 'd1'"),
        (["", "   "], r"corpus.jsonl: the corpus is empty"),
    ],
)
def test_corpus_reader_names_file_and_line(tmp_path: Path, lines: list[str], match: str) -> None:
    path = write_lines(tmp_path / "corpus.jsonl", lines)
    with pytest.raises(DataError, match=match):
        read_corpus(path)


def test_numeric_ids_are_read_as_strings(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "corpus.jsonl", ['{"_id": 7, "text": "seven"}'])
    assert list(read_corpus(path)) == ["7"]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (
            ['{"_id": "q1", "text": "a"}', '{"_id": "q1", "text": "b"}'],
            r"queries.jsonl:2: duplicate query id 'q1'",
        ),
        (['{"_id": "q1"}'], r"queries.jsonl:1: missing field 'text'"),
        (["{'_id': 'q1'}"], r"queries.jsonl:1: not valid JSON"),
    ],
)
def test_queries_reader_names_file_and_line(tmp_path: Path, lines: list[str], match: str) -> None:
    path = write_lines(tmp_path / "queries.jsonl", lines)
    with pytest.raises(DataError, match=match):
        read_queries(path)


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (
            ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2"],
            r"test.tsv:3: expected 3 tab-separated columns .* got 2",
        ),
        (["q1 d1 1"], r"test.tsv:1: expected 3 tab-separated columns"),
        (
            ["query-id\tcorpus-id\tscore", "q1\td1\thigh"],
            r"test.tsv:2: score must be a whole number .*, got 'high'",
        ),
    ],
)
def test_qrels_reader_names_file_and_line(tmp_path: Path, lines: list[str], match: str) -> None:
    path = write_lines(tmp_path / "qrels" / "test.tsv", lines)
    with pytest.raises(DataError, match=match):
        read_qrels(path)


def test_qrels_reader_accepts_headerless_graded_files(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "qrels.tsv", ["q1\td1\t2", "", "q1\td2\t0", "q2\td1\t1.0"])
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d1": 1}}


def test_missing_workspace_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="workspace folder not found"):
        Workspace(tmp_path / "nope").corpus()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no corpus.jsonl in this folder"):
        Workspace(tmp_path / "empty").corpus()
    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(DataError, match=r"no qrels for split 'dev' \(available splits: test, train\)"):
        ws.qrels("dev")
    ws.queries_path.unlink()
    with pytest.raises(DataError, match="queries.jsonl: file not found"):
        ws.queries()


# -- embed_workspace ---------------------------------------------------------------------------------------------


def test_embed_workspace_uses_the_workspace_cache(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    first = CountingEncoder()
    corpus, splits = embed_workspace(ws, model=first)
    assert corpus.doc_ids == ["d1", "d2", "d3"]
    np.testing.assert_array_equal(corpus.embeddings, expected([d.full_text for d in DOCS], "document"))
    assert sorted(splits) == ["test", "train"]
    train = splits["train"]
    assert train.query_ids == ["q1", "q2", "q3"]
    assert train.pairs(corpus.index()) == [(0, 0), (1, 1), (2, 2)]  # the score-0 judgement is not a pair
    assert (ws.state_dir / CACHE_DIR / "index.sqlite").is_file()

    again = CountingEncoder()
    embed_workspace(ws, ["train"], model=again)
    assert again.encoded == []
    assert len(first.encoded) == 6  # 3 documents + 3 distinct queries (test's q3 is train's q3)


def test_embed_workspace_checks_qrels_against_corpus_and_queries(tmp_path: Path) -> None:
    ws = make_workspace(
        tmp_path / "ws",
        {
            "ghost-query": {"q9": {"d1": 1}},
            "ghost-doc": {"q1": {"d7": 1}},
            "none-relevant": {"q1": {"d1": 0}},
        },
    )
    with pytest.raises(
        DataError, match=r"ghost-query.tsv: 1 query ids are not in queries.jsonl \(first: 'q9'\)"
    ):
        embed_workspace(ws, ["ghost-query"], model=CountingEncoder())
    with pytest.raises(
        DataError, match=r"ghost-doc.tsv: 1 document ids are not in corpus.jsonl \(first: 'd7'\)"
    ):
        embed_workspace(ws, ["ghost-doc"], model=CountingEncoder())
    with pytest.raises(DataError, match=r"none-relevant.tsv: no query has a relevant document"):
        embed_workspace(ws, ["none-relevant"], model=CountingEncoder())


def test_a_non_utf8_jsonl_file_is_one_data_error(tmp_path: Path) -> None:
    from qadapter.data import read_corpus

    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "fine"}\n\xff\xfe not text\n')
    with pytest.raises(DataError, match="not UTF-8 text; save the file as UTF-8"):
        read_corpus(path)


def test_workspace_reads_a_file_once_and_again_after_it_changes(tmp_path: Path) -> None:
    from qadapter.data import Document, Workspace

    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document("a", "first")])
    first = ws.corpus()
    first["b"] = Document("b", "added by a caller")  # must not leak into the cache
    assert set(ws.corpus()) == {"a"}
    ws.write_corpus([Document("a", "second"), Document("c", "new")])
    assert {d: doc.text for d, doc in ws.corpus().items()} == {"a": "second", "c": "new"}

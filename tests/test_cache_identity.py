"""The embedding cache knows models by what they are, not by their names (issue 10, item 1).

Two real (tiny, random-weight) Sentence Transformers models saved in folders with the same name must never share
cached vectors; an ``openai:`` model is the same model however its endpoint URL is spelled.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from qadapter.data import Document, Query, Workspace
from qadapter.embedding import LEGACY_CACHE_FILE, cache_for, embed_workspace
from qadapter.encoders import EmbeddingCache, embed, get_encoder, model_identity
from qadapter.encoders.identity import folder_digest, normalize_endpoint, openai_identity

sys.path.insert(0, str(Path(__file__).parent))
from tiny_st_model import build_tiny_model  # noqa: E402

DOCS = [Document("d1", "how the river city does solar energy"), Document("d2", "water panel cost and price")]
QUERIES = [Query("q1", "what is the solar cost"), Query("q2", "why does the river do")]


def make_workspace(path: Path) -> Workspace:
    ws = Workspace(path)
    ws.write_corpus(DOCS)
    ws.write_queries(QUERIES)
    ws.write_qrels("test", {"q1": {"d1": 1}, "q2": {"d2": 1}})
    return ws


@pytest.fixture(scope="module")
def twin_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different random models, each saved in a folder called ``model``."""
    root = tmp_path_factory.mktemp("models")
    return build_tiny_model(root / "a" / "model", seed=1), build_tiny_model(root / "b" / "model", seed=2)


def test_two_models_in_folders_of_the_same_name_never_share_vectors(
    tmp_path: Path, twin_models: tuple[Path, Path]
) -> None:
    first, second = twin_models
    ws = make_workspace(tmp_path / "ws")
    corpus_a, _ = embed_workspace(ws, model=str(first))
    corpus_b, _ = embed_workspace(ws, model=str(second))
    direct_b = get_encoder(str(second), device="cpu").encode([d.full_text for d in DOCS], kind="document")
    assert not np.allclose(corpus_a.embeddings, corpus_b.embeddings)
    np.testing.assert_allclose(corpus_b.embeddings, direct_b, atol=1e-6)


def test_a_copied_model_folder_is_the_same_model(tmp_path: Path, twin_models: tuple[Path, Path]) -> None:
    first, second = twin_models
    copy = Path(shutil.copytree(first, tmp_path / "elsewhere" / "renamed"))
    assert folder_digest(copy) == folder_digest(first) != folder_digest(second)
    assert model_identity(get_encoder(str(copy))) == model_identity(get_encoder(str(first)))


def test_the_folder_hash_is_memoised_and_follows_changed_files(
    tmp_path: Path, twin_models: tuple[Path, Path]
) -> None:
    folder = Path(shutil.copytree(twin_models[0], tmp_path / "model"))
    with EmbeddingCache(tmp_path / "cache") as cache:
        before = folder_digest(folder, cache.digests)
        assert list(cache.digests.values()) == [before]
    config = folder / "config.json"
    config.write_text(config.read_text().replace('"hidden_act"', '"hidden_dropout_prob": 0.5, "hidden_act"'))
    os.utime(config, ns=(1, 1))
    with EmbeddingCache(
        tmp_path / "cache"
    ) as cache:  # reopened: the old digest is on disk, the folder changed
        assert folder_digest(folder, cache.digests) != before
        assert len(cache.digests) == 2


@pytest.mark.parametrize(
    "spelling",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.0.0.1:8000/v1/",
        "http://localhost:8000/v1",
        "HTTP://LocalHost:8000/v1//",
        "127.0.0.1:8000/v1",
    ],
)
def test_an_endpoint_is_one_model_however_its_url_is_spelled(spelling: str) -> None:
    assert normalize_endpoint(spelling) == "http://127.0.0.1:8000/v1"
    assert openai_identity("m", spelling, None) == openai_identity("m", "http://127.0.0.1:8000/v1", None)


def test_default_ports_and_the_official_endpoint() -> None:
    assert normalize_endpoint("https://API.openai.com:443/v1/") == normalize_endpoint(None)
    assert normalize_endpoint("http://example.org:80/v1") == "http://example.org/v1"
    assert normalize_endpoint("http://example.org:8080/v1") == "http://example.org:8080/v1"
    identities = {
        openai_identity("m", None, None),
        openai_identity("m", None, 256),
        openai_identity("other", None, None),
        openai_identity("m", "http://127.0.0.1:9000/v1", None),
        openai_identity("m", "http://127.0.0.1:9000/v2", None),
    }
    assert len(identities) == 5


def test_env_var_and_flag_give_the_same_openai_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1/")
    from_env = get_encoder("openai:m")
    monkeypatch.delenv("OPENAI_BASE_URL")
    from_flag = get_encoder("openai:m", base_url="http://127.0.0.1:8000/v1")
    assert model_identity(from_env) == model_identity(from_flag)


class NamedEncoder:
    name = "all-MiniLM-L6-v2"
    dim = 4

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: list[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        self.encoded.extend(texts)
        return np.ones((len(texts), self.dim), dtype=np.float32)


def test_a_version_1_cache_is_never_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A v1 cache keyed vectors by model name; its entries must not be silently reused (and must not break runs)."""
    ws = make_workspace(tmp_path / "ws")
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    legacy = sqlite3.connect(ws.state_dir / LEGACY_CACHE_FILE)
    legacy.execute("CREATE TABLE embeddings (key TEXT PRIMARY KEY, model TEXT, dim INTEGER, vector BLOB)")
    legacy.commit()
    legacy.close()
    encoder = NamedEncoder()
    with caplog.at_level("WARNING"):
        embed_workspace(ws, model=encoder)
    assert len(encoder.encoded) == 4
    assert "older format" in caplog.text


def test_a_cache_folder_of_another_format_version_is_refused(tmp_path: Path) -> None:
    from qadapter.errors import ArtifactError

    with EmbeddingCache(tmp_path / "cache") as cache:
        cache._db.execute("UPDATE meta SET value = '99' WHERE name = 'version'")
    with pytest.raises(
        ArtifactError, match="version 99, expected .* version 2; delete the folder to rebuild"
    ):
        EmbeddingCache(tmp_path / "cache")


def test_float16_storage_returns_float32_close_to_the_originals(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    texts = [f"t{i}" for i in range(50)]
    with EmbeddingCache(tmp_path / "c", dtype="float16") as cache:
        cache.put_many("m", "document", texts, vectors)
    with EmbeddingCache(tmp_path / "c") as cache:  # the table keeps the dtype it was created with
        got = cache.read("m", "document", cache.rows("m", "document", texts))
    assert got.dtype == np.float32 and (tmp_path / "c" / "t1.float16").stat().st_size == 50 * 8 * 2
    np.testing.assert_allclose(got, vectors, rtol=1e-3, atol=1e-3)


def test_cache_for_uses_the_workspace_folder(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    with cache_for(ws) as cache:
        embed(NamedEncoder(), ["x"], kind="query", cache=cache)
    assert cache.path == ws.state_dir / "embeddings" and (cache.path / "t1.float32").stat().st_size == 16

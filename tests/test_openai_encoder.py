"""The OpenAI-compatible embeddings encoder against a real local HTTP endpoint (qadapter's own server, in-process).

Many RAG apps store API embeddings; qadapter must train and evaluate on them too. The endpoint here is a real
uvicorn server on a free 127.0.0.1 port, serving a deterministic fake encoder, called through the real `openai`
client inside :class:`qadapter.encoders.openai_endpoint.OpenAIEncoder`.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from qadapter.adapters import Adapter  # noqa: E402
from qadapter.encoders import EmbeddingCache, embed, get_encoder  # noqa: E402
from qadapter.errors import QadapterError  # noqa: E402

DIM = 16


class HashEncoder:
    """Deterministic unit vectors from a text's hash; counts how many texts it encoded."""

    name = "hash-encoder"
    dim = DIM

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        self.encoded += len(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=DIM)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, HashEncoder]]:
    from qadapter.serve.app import create_app

    backend = HashEncoder()
    app = create_app(Adapter.identity(DIM, {"base_model": {"name": backend.name, "dim": DIM}}), backend)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the local embeddings server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", backend
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_encoder_returns_the_endpoint_vectors_in_order(endpoint) -> None:
    base_url, backend = endpoint
    encoder = get_encoder("openai:hash-encoder", base_url=base_url)
    texts = [f"text number {i}" for i in range(10)]
    got = encoder.encode(texts, kind="document", batch_size=3)  # 4 requests
    np.testing.assert_allclose(got, HashEncoder().encode(texts), atol=1e-6)
    assert encoder.dim == DIM and encoder.name == "openai:hash-encoder"


def test_cached_embedding_through_the_endpoint_encodes_each_text_once(endpoint, tmp_path) -> None:
    base_url, backend = endpoint
    encoder = get_encoder("openai:hash-encoder", base_url=base_url)
    texts = ["alpha", "beta", "alpha", "gamma"]
    before = backend.encoded
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        first = embed(encoder, texts, kind="query", cache=cache)
        assert backend.encoded - before == 3  # duplicates are encoded once
        second = embed(encoder, texts, kind="query", cache=cache)
    assert backend.encoded - before == 3  # the second call is served from the cache
    np.testing.assert_array_equal(first, second)


def test_an_unreachable_endpoint_is_one_clear_error() -> None:
    encoder = get_encoder("openai:anything", base_url=f"http://127.0.0.1:{_free_port()}/v1")
    encoder.max_retries = 0
    encoder.timeout = 2.0
    with pytest.raises(QadapterError, match="embeddings endpoint .* failed"):
        encoder.encode(["hello"])


def test_run_embeds_trains_and_evaluates_through_the_base_url(endpoint, tmp_path, monkeypatch) -> None:
    """``qadapter run --model openai:NAME --base-url URL``: the test queries are encoded through the same endpoint as
    the corpus (evaluate once built a fresh encoder without the endpoint)."""
    from qadapter.cli import main
    from qadapter.data import Document, Query, Workspace

    url, backend = endpoint
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document(f"d{i}", f"document number {i}") for i in range(8)])
    ws.write_queries([Query(f"q{i}", f"question {i}") for i in range(8)])
    ws.write_qrels("train", {f"q{i}": {f"d{i}": 1} for i in range(5)})
    ws.write_qrels("test", {f"q{i}": {f"d{i}": 1} for i in range(5, 8)})
    before = backend.encoded
    main(
        ["run", str(ws.path), "--model", "openai:hash-encoder", "--base-url", url, "--json", "--no-progress"]
    )
    assert (ws.path / "adapter" / "adapter_config.json").is_file()
    # every document and every query through this endpoint (and one probe of its dimension)
    assert backend.encoded - before >= 8 + 8

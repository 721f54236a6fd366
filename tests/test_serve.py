"""The embeddings server: micro-batching logic, the HTTP contract (incl. every error path) and a real process.

Unit tests use a deterministic fake encoder so expected vectors are known exactly; the integration test runs
``python -m qadapter serve`` with the bundled model and calls it with the real ``openai`` client.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'qadapter[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from qadapter.adapters import Adapter, save_adapter  # noqa: E402
from qadapter.cli import main  # noqa: E402
from qadapter.errors import ArtifactError  # noqa: E402
from qadapter.serve import create_app, load_served_model  # noqa: E402

DIM = 8
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


class FakeEncoder:
    """Deterministic: each text maps to a fixed pseudo-random unit vector; documents differ from queries."""

    name = "fake-encoder"
    dim = DIM

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[int, str]] = []

    def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        if self.fail:
            raise RuntimeError("model exploded")
        self.calls.append((len(texts), kind))
        return np.stack([fake_vector(t, kind) for t in texts]).astype(np.float32)


def fake_vector(text: str, kind: str) -> np.ndarray:
    seed = sum(text.encode()) + len(text) * 131 + (7 if kind == "document" else 0)
    v = np.random.default_rng(seed).standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def make_adapter(dim: int = DIM, seed: int = 0, model: str = "fake-encoder", scale: float = 0.3) -> Adapter:
    rng = np.random.default_rng(seed)
    tensors = {
        "weight": np.eye(dim) + scale * rng.standard_normal((dim, dim)),
        "bias": scale * rng.standard_normal(dim),
    }
    return Adapter("linear", dim, tensors, {"base_model": {"name": model, "dim": dim}})


@pytest.fixture
def adapter() -> Adapter:
    return make_adapter()


@pytest.fixture
def client(adapter: Adapter) -> Iterator[TestClient]:
    app = create_app(adapter, FakeEncoder(), api_key=KEY, max_inputs=5, max_chars=50, max_body_bytes=2000)
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, body: object, headers: dict[str, str] | None = None) -> object:
    return client.post("/v1/embeddings", json=body, headers=AUTH if headers is None else headers)


# --- the HTTP contract --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_type", "kind"),
    [
        (None, "query"),
        ("query", "query"),
        ("search_query", "query"),
        ("document", "document"),
        ("search_document", "document"),
    ],
)
def test_queries_get_the_adapter_and_documents_the_base_vectors(
    client: TestClient, adapter: Adapter, input_type: str | None, kind: str
) -> None:
    texts = ["what is a query adapter", "second"]
    body: dict[str, object] = {"input": texts, "model": "anything"}
    if input_type:
        body["input_type"] = input_type
    response = post(client, body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["object"] == "list" and payload["model"] == "qadapter/fake-encoder"
    assert [item["index"] for item in payload["data"]] == [0, 1]
    assert all(item["object"] == "embedding" for item in payload["data"])
    got = np.array([item["embedding"] for item in payload["data"]], dtype=np.float32)
    base = np.stack([fake_vector(t, kind) for t in texts])
    expected = adapter.transform(base) if kind == "query" else base
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # whitespace-word token counts for an encoder without a tokenizer
    assert payload["usage"] == {"prompt_tokens": 6, "total_tokens": 6}


def test_single_string_and_base64_encoding(client: TestClient, adapter: Adapter) -> None:
    response = post(client, {"input": "hello", "encoding_format": "base64"})
    assert response.status_code == 200
    (item,) = response.json()["data"]
    decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, adapter.transform(fake_vector("hello", "query")))


def test_dimensions_must_match_when_given(client: TestClient) -> None:
    assert post(client, {"input": "x", "dimensions": DIM}).status_code == 200
    response = post(client, {"input": "x", "dimensions": 3})
    assert response.status_code == 400 and f"{DIM}-dimensional" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"input": []}, "empty list"),
        ({"input": [1, 2, 3]}, "token-id inputs are not supported"),
        ({"input": [[1, 2], [3]]}, "token-id inputs are not supported"),
        ({"input": ["ok", None]}, "input 1 must be a string"),
        ({"input": ["ok", ""]}, "input 1 is an empty string"),
        ({"input": {"text": "x"}}, "must be a string or a list of strings"),
        ({"input": 5}, "must be a string or a list of strings"),
        ({"model": "m"}, "missing required field 'input'"),
        (["x"], "must be a JSON object"),
        ({"input": "x", "input_typo": "query"}, "unknown field 'input_typo'; valid fields: input, model"),
        ({"input": "x", "input_type": "passage"}, "invalid 'input_type'"),
        ({"input": "x", "encoding_format": "int8"}, "invalid 'encoding_format'"),
    ],
)
def test_bad_input_is_a_400_in_openai_error_shape(client: TestClient, body: object, fragment: str) -> None:
    response = post(client, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error" and error["code"]


def test_invalid_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/v1/embeddings", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": ["a"] * 6}, "too_many_inputs"),
        ({"input": ["short", "x" * 51]}, "input_too_long"),
        ({"input": "y" * 40, "user": "z" * 3000}, "request_too_large"),
    ],
)
def test_too_large_requests_are_a_413(client: TestClient, body: object, code: str) -> None:
    response = post(client, body)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == code


def test_streamed_body_over_the_limit_is_a_413_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"input": "'
        yield b"x" * 3000
        yield b'"}'

    response = client.post("/v1/embeddings", content=chunks(), headers=AUTH)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_api_key_is_checked_but_health_is_open(client: TestClient) -> None:
    missing = post(client, {"input": "x"}, headers={})
    wrong = post(client, {"input": "x"}, headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers=AUTH).json()["data"][0]["id"] == "qadapter/fake-encoder"
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["dim"] == DIM and health["adapter"] == "linear"


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    assert client.get("/v1/nothing").json()["error"]["code"] == "not_found"
    response = client.get("/v1/embeddings")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_encoder_failure_is_a_500_in_error_shape(adapter: Adapter) -> None:
    with TestClient(create_app(adapter, FakeEncoder(fail=True), warmup=False)) as failing:
        response = failing.post("/v1/embeddings", json={"input": "x"})
    assert response.status_code == 500
    assert (
        response.json()["error"]["type"] == "server_error"
        and "model exploded" in response.json()["error"]["message"]
    )


def test_a_full_queue_is_a_503_with_retry_after(adapter: Adapter) -> None:
    httpx = pytest.importorskip("httpx")
    release = threading.Event()

    class SlowEncoder(FakeEncoder):
        def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
            release.wait(10)
            return super().encode(texts, kind=kind)

    app = create_app(adapter, SlowEncoder(), max_queue=2, warmup=False)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                first = asyncio.ensure_future(http.post("/v1/embeddings", json={"input": ["a", "b"]}))
                await asyncio.sleep(0.1)
                busy = await http.post("/v1/embeddings", json={"input": "c"})
                release.set()
                return await first, busy

    ok, busy = asyncio.run(scenario())
    assert ok.status_code == 200 and len(ok.json()["data"]) == 2
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "server_busy"


def test_adapter_folder_is_loaded_and_checked_against_the_encoder(tmp_path: Path, adapter: Adapter) -> None:
    folder = save_adapter(adapter, tmp_path / "my-adapter")
    with TestClient(create_app(folder, FakeEncoder())) as from_folder:
        payload = from_folder.post(
            "/embeddings", json={"input": "x"}
        ).json()  # no key configured; /v1-less alias
    assert payload["model"] == "qadapter/my-adapter"
    np.testing.assert_allclose(
        payload["data"][0]["embedding"], adapter.transform(fake_vector("x", "query")), rtol=1e-6
    )
    with pytest.raises(ArtifactError, match="16-dimensional"):
        create_app(make_adapter(dim=16), FakeEncoder())


def test_an_adapter_trained_on_a_local_model_folder_asks_for_it(tmp_path: Path) -> None:
    config = {"base_model": {"name": "st:my-model", "dim": DIM}}
    folder = save_adapter(Adapter("identity", DIM, {}, config), tmp_path / "adapter")
    with pytest.raises(
        ArtifactError, match="local model folder 'my-model'; pass that folder with --model PATH"
    ):
        load_served_model(folder)


def test_cli_reports_a_missing_adapter_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "adapter folder not found" in capsys.readouterr().err


# --- a real server process, the real model, the real openai client ------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_real_server_with_the_openai_client(tmp_path: Path) -> None:
    openai = pytest.importorskip("openai", reason="needs the openai extra")
    httpx = pytest.importorskip("httpx")
    from qadapter.encoders import get_encoder

    adapter = make_adapter(384, seed=1, model="all-MiniLM-L6-v2", scale=0.05)
    folder = save_adapter(adapter, tmp_path / "adapter")

    port = free_port()
    env = {**os.environ, "QADAPTER_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    args = ["serve", str(folder), "--port", str(port), "--max-inputs", "64"]
    command = [sys.executable, "-m", "qadapter", *args]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # expected vectors from the base model in this process, while the server loads its own copy
        encoder = get_encoder()
        queries = ["How much did Apple cut its emissions?", "recycled aluminium in MacBook"]
        documents = ["Apple reduced its greenhouse gas emissions by over 55 percent since 2015."]
        batch = [f"question number {i} about carbon neutrality" for i in range(40)]
        expected_queries = adapter.transform(encoder.encode(queries))
        expected_document = encoder.encode(documents, kind="document")[0]
        expected = adapter.transform(encoder.encode(batch))

        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"server exited with {server.returncode}:\n{(tmp_path / 'server.log').read_text()}"
                )
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /health within 90 s")
            time.sleep(0.2)

        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)

        # queries: the adapter applied to the base vectors (default input_type, base64 transport by default)
        got = np.array([d.embedding for d in client.embeddings.create(model="qadapter", input=queries).data])
        np.testing.assert_allclose(got, expected_queries, atol=2e-5)
        # documents: the base vectors unchanged (float transport)
        response = client.embeddings.create(
            model="qadapter", input=documents, encoding_format="float", extra_body={"input_type": "document"}
        )
        np.testing.assert_allclose(response.data[0].embedding, expected_document, atol=2e-5)
        assert response.usage.prompt_tokens > 5

        # a batch and concurrent requests from threads: every caller gets its own vectors back, in order
        np.testing.assert_allclose(
            [d.embedding for d in client.embeddings.create(model="q", input=batch).data], expected, atol=2e-5
        )
        results: dict[int, np.ndarray] = {}

        def call(i: int) -> None:
            data = client.embeddings.create(model="q", input=[batch[i], batch[i + 20]]).data
            results[i] = np.array([d.embedding for d in data])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results) == list(range(16))
        for i, vectors in results.items():
            np.testing.assert_allclose(vectors, expected[[i, i + 20]], atol=2e-5)

        # bad inputs, limits and keys, as the openai client sees them
        with pytest.raises(openai.BadRequestError, match="empty list"):
            client.embeddings.create(model="q", input=[])
        with pytest.raises(openai.BadRequestError, match="input 1 must be a string"):
            client.embeddings.create(model="q", input=["ok", {"x": 1}])  # type: ignore[list-item]
        with pytest.raises(openai.BadRequestError, match="token-id"):
            client.embeddings.create(model="q", input=[[101, 2023]])
        with pytest.raises(openai.APIStatusError) as too_many:
            client.embeddings.create(model="q", input=["x"] * 65)
        assert too_many.value.status_code == 413
        wrong_key = openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong_key.embeddings.create(model="q", input="x")

        health = httpx.get(f"{base_url}/health").json()
        assert health["requests"] == 3 + 16 and health["texts"] == 2 + 1 + 40 + 32
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    # graceful shutdown on SIGTERM (uvicorn re-raises the signal once it has drained, hence -SIGTERM)
    assert server.returncode in (0, -signal.SIGTERM), (tmp_path / "server.log").read_text()
    assert "Application shutdown complete" in (tmp_path / "server.log").read_text()

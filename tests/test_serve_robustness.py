"""The server under accident and attack: bad inputs fail alone, deadlines hold, gone clients cost nothing.

Each test here is a regression test for a defect reproduced on the server before these guarantees (issue 10):
a poisoned request failed every request batched with it, deeply nested JSON or a 5,000-digit integer was a
plain-text 500, requests never timed out, a client that disconnected still had its texts encoded, ``/health``
said ok while the queue was minutes long, ``/docs`` was open without the key, and an adapter trained on another
base model of the same dimension was served with a warning only (issue 13).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'qadapter[serve]'")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from test_serve import AUTH, DIM, KEY, FakeEncoder, make_adapter  # noqa: E402

from qadapter.adapters import Adapter, save_adapter  # noqa: E402
from qadapter.errors import ArtifactError  # noqa: E402
from qadapter.serve import create_app, load_served_model  # noqa: E402


class GatedEncoder(FakeEncoder):
    """Records every text it encodes; blocks while ``gate`` is clear; fails on texts containing ``poison``."""

    def __init__(self, seconds_per_text: float = 0.0) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.seconds_per_text = seconds_per_text
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        self.gate.wait(20)
        time.sleep(self.seconds_per_text * len(texts))
        if any("poison" in t for t in texts):
            raise RuntimeError("the model cannot encode 'poison'")
        self.texts.extend(texts)
        return super().encode(texts, kind=kind)


def error_of(response: httpx.Response) -> dict[str, object]:
    """The OpenAI error object; fails the test if the body is not JSON in that shape."""
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["message"]
    return error


async def post_all(app: FastAPI, bodies: list[bytes], gate: threading.Event) -> list[httpx.Response]:
    """Send all bodies concurrently while the encoder is held on its first call, so they share one batch."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http:
            gate.clear()
            first = asyncio.ensure_future(http.post("/v1/embeddings", json={"input": "first"}))
            await asyncio.sleep(0.1)  # the first request is now inside the encoder; the rest queue behind it
            rest = [asyncio.ensure_future(http.post("/v1/embeddings", content=b)) for b in bodies]
            await asyncio.sleep(0.3)
            gate.set()
            return [await first, *[await r for r in rest]]


@pytest.mark.parametrize("poison", ["evil \ud800", "poison pill"], ids=["lone-surrogate", "encoder-failure"])
def test_a_poisoned_request_among_20_concurrent_ones_fails_alone(poison: str) -> None:
    encoder = GatedEncoder()
    app = create_app(make_adapter(), encoder, warmup=False)
    bodies = [json.dumps({"input": [f"good query {i}", f"another {i}"]}).encode() for i in range(20)]
    bodies.insert(7, json.dumps({"input": ["fine text", poison]}).encode())  # ASCII JSON: "\ud800" escaped
    first, *responses = asyncio.run(post_all(app, bodies, encoder.gate))
    assert first.status_code == 200
    bad = responses.pop(7)
    # a lone surrogate is refused before batching (400); a text the encoder fails on fails only its request (500)
    assert bad.status_code == (400 if "\ud800" in poison else 500), bad.text
    assert "surrogate" in str(error_of(bad)["message"]) or "poison" in str(error_of(bad)["message"])
    assert [r.status_code for r in responses] == [200] * 20
    for i, response in enumerate(responses):
        assert len(response.json()["data"]) == 2
        np.testing.assert_allclose(
            response.json()["data"][0]["embedding"],
            make_adapter().transform(FakeEncoder().encode([f"good query {i}"]))[0],
            atol=1e-6,
        )


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"input": ' + b"[" * 50_000 + b'"x"' + b"]" * 50_000 + b"}",
        b'{"input": "x", "dimensions": ' + b"7" * 5000 + b"}",
        b'{"input": [' + b"9" * 5000 + b"]}",
        b'{"input": "x", "user": ' + b"1" * 4300 + b"}",
    ],
    ids=["nested-array", "nested-input", "huge-int-dimensions", "huge-int-input", "4300-digit-user"],
)
def test_hostile_json_is_a_400_in_the_error_shape(body: bytes) -> None:
    app = create_app(make_adapter(), FakeEncoder(), warmup=False, max_body_bytes=1_000_000)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/embeddings", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert error_of(response)["type"] == "invalid_request_error"
        assert client.post("/v1/embeddings", json={"input": "still serving"}).status_code == 200


def test_docs_are_off_by_default_and_keyed_when_on() -> None:
    with TestClient(create_app(make_adapter(), FakeEncoder(), api_key=KEY, warmup=False)) as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert client.get(path).status_code == 404
            assert client.get(path, headers=AUTH).status_code == 404
    with TestClient(
        create_app(make_adapter(), FakeEncoder(), api_key=KEY, docs=True, warmup=False)
    ) as client:
        for path in ("/docs", "/openapi.json"):
            assert error_of(client.get(path))["code"] == "missing_api_key"
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get(path, headers=AUTH).status_code == 200
        assert "/v1/embeddings" in client.get("/openapi.json", headers=AUTH).json()["paths"]


def test_an_in_memory_adapter_for_another_base_model_is_refused_even_at_the_same_dimension() -> None:
    with pytest.raises(ArtifactError, match="trained on base model 'other-model', not 'fake-encoder'"):
        create_app(make_adapter(model="other-model"), FakeEncoder())


def test_serve_refuses_a_foreign_base_model_of_the_same_dimension(tmp_path: Path) -> None:
    from qadapter.encoders.sentence_transformers import bundled_model_path

    other = tmp_path / "other-minilm"  # a different model folder of the same dimension (384)
    other.symlink_to(bundled_model_path(), target_is_directory=True)
    folder = save_adapter(make_adapter(384, model="all-MiniLM-L6-v2", scale=0.05), tmp_path / "adapter")
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="adapter was trained on base model 'all-MiniLM-L6-v2', not 'st:"):
        load_served_model(folder, model=str(other))
    assert time.monotonic() - started < 5  # refused before the model is loaded


# --- deadlines, disconnects and overload against a real uvicorn server on 127.0.0.1 -------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def run_server() -> Iterator:  # type: ignore[type-arg]
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(condition, timeout: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def raw_request(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


def test_a_client_that_disconnects_costs_no_encoding(run_server) -> None:  # noqa: ANN001
    encoder = GatedEncoder()
    app = create_app(make_adapter(), encoder, warmup=False)
    base_url = run_server(app)
    port = int(base_url.rsplit(":", 1)[1])
    encoder.gate.clear()
    holder = threading.Thread(
        target=httpx.post, args=(f"{base_url}/v1/embeddings",), kwargs={"json": {"input": "held"}}
    )
    holder.start()
    assert wait_until(lambda: app.state.batcher.pending == 1)
    big = [f"gone client text {j}" for j in range(40)]
    sockets = [raw_request(port, json.dumps({"input": big}).encode()) for _ in range(6)]
    assert wait_until(lambda: app.state.batcher.pending == 1 + 6 * 40)
    for sock in sockets:
        sock.close()
    assert wait_until(lambda: app.state.batcher.pending == 1), "the server did not notice the disconnects"
    encoder.gate.set()
    holder.join(timeout=20)
    assert wait_until(lambda: app.state.batcher.stats.dropped == 6)
    assert httpx.post(f"{base_url}/v1/embeddings", json={"input": "after"}).status_code == 200
    assert encoder.texts == ["held", "after"]  # not one of the 240 texts of the clients that left


def test_a_request_past_its_deadline_is_a_503_in_seconds_and_is_never_encoded(run_server) -> None:  # noqa: ANN001
    encoder = GatedEncoder()
    app = create_app(make_adapter(), encoder, warmup=False, request_timeout_s=0.5)
    base_url = run_server(app)
    encoder.gate.clear()
    holder = threading.Thread(
        target=httpx.post, args=(f"{base_url}/v1/embeddings",), kwargs={"json": {"input": "held"}}
    )
    holder.start()
    assert wait_until(lambda: app.state.batcher.pending == 1)
    started = time.monotonic()
    late = httpx.post(f"{base_url}/v1/embeddings", json={"input": "queued behind"}, timeout=30)
    elapsed = time.monotonic() - started
    assert late.status_code == 503 and error_of(late)["code"] == "timeout" and late.headers["retry-after"]
    assert 0.4 < elapsed < 3
    # a missed deadline is overload for the next timeout_s seconds; both the held and the late request missed
    health = httpx.get(f"{base_url}/health")
    assert health.status_code == 503 and health.json()["deadline_misses"] == 2
    encoder.gate.set()
    holder.join(timeout=20)
    assert wait_until(lambda: app.state.batcher.stats.dropped == 1)
    assert "queued behind" not in encoder.texts


def test_a_queue_longer_than_the_deadline_refuses_at_once_and_health_says_overloaded(run_server) -> None:  # noqa: ANN001
    encoder = GatedEncoder(seconds_per_text=0.02)  # warm-up measures about 0.02 s per text
    app = create_app(make_adapter(), encoder, request_timeout_s=1.0)
    base_url = run_server(app)
    assert httpx.get(f"{base_url}/health").json()["status"] == "ok"
    flood = threading.Thread(
        target=httpx.post,
        args=(f"{base_url}/v1/embeddings",),
        kwargs={"json": {"input": [f"flood {i}" for i in range(100)]}, "timeout": 30},
    )
    flood.start()  # 100 texts: about 2 s of encoding, past the 1 s deadline of anything queued behind it
    assert wait_until(lambda: app.state.batcher.pending == 100)
    started = time.monotonic()
    query = httpx.post(f"{base_url}/v1/embeddings", json={"input": "one query"})
    assert time.monotonic() - started < 0.5
    assert query.status_code == 503 and error_of(query)["code"] == "server_busy"
    assert int(query.headers["retry-after"]) >= 1
    health = httpx.get(f"{base_url}/health")
    assert health.status_code == 503 and health.json()["status"] == "overloaded"
    assert health.json()["queue"]["expected_wait_s"] > 1.0
    flood.join(timeout=30)  # the flood itself missed its 1 s deadline: overloaded for 1 s more, then ok
    assert wait_until(lambda: httpx.get(f"{base_url}/health").json()["status"] == "ok", timeout=3)
    assert httpx.post(f"{base_url}/v1/embeddings", json={"input": "one query"}).status_code == 200


def test_a_body_that_arrives_too_slowly_is_a_408(run_server) -> None:  # noqa: ANN001
    app = create_app(make_adapter(), FakeEncoder(), warmup=False, request_timeout_s=0.5)
    port = int(run_server(app).rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    sock.sendall(b'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"input": ')
    started = time.monotonic()
    reply = sock.recv(65536).decode()
    sock.close()
    assert reply.startswith("HTTP/1.1 408") and '"request_timeout"' in reply
    assert time.monotonic() - started < 3


def test_an_unexpected_error_is_a_500_in_the_error_shape() -> None:
    class Broken(FakeEncoder):
        def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
            return np.zeros((len(texts), DIM + 1), np.float32)  # the adapter cannot take these

    app = create_app(make_adapter(), Broken(), warmup=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/embeddings", json={"input": "x"})
    assert response.status_code == 500 and error_of(response)["type"] == "server_error"


def test_create_app_names_an_unknown_limit() -> None:
    with pytest.raises(TypeError, match="unknown serve limit.*max_qeue.*valid: max_batch"):
        create_app(Adapter.identity(DIM), FakeEncoder(), max_qeue=3)


def test_the_cost_estimate_separates_the_cost_per_call_from_the_cost_per_text() -> None:
    from qadapter.serve.batching import CostEstimate

    cost = CostEstimate()
    cost.update(1.0, 1)  # one size only: all of it counts per text (cautious)
    assert cost.seconds(40, max_batch=64) == pytest.approx(40.0)
    cost.update(2.5, 16)  # 0.9 s per call + 0.1 s per text
    assert cost.overhead_s == pytest.approx(0.9) and cost.per_text_s == pytest.approx(0.1)
    assert cost.seconds(40, max_batch=64) == pytest.approx(0.9 + 4.0)
    assert cost.seconds(128, max_batch=64) == pytest.approx(2 * 0.9 + 12.8)
    cost.update(0.1, 30)  # a fit with a negative overhead falls back to the average per text
    assert cost.overhead_s == 0 and cost.per_text_s == pytest.approx((1.0 + 2.5 / 16 + 0.1 / 30) / 3)


def test_cli_passes_the_timeouts_and_docs_flag_to_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qadapter.serve
    from qadapter.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(qadapter.serve, "serve", lambda adapter, **kwargs: seen.update(kwargs))
    folder = save_adapter(make_adapter(), tmp_path / "adapter")
    main(["serve", str(folder), "--request-timeout", "2.5", "--idle-timeout", "7", "--docs"])
    assert seen["request_timeout_s"] == 2.5 and seen["idle_timeout_s"] == 7 and seen["docs"] is True
    main(["serve", str(folder)])
    assert seen["request_timeout_s"] == 30.0 and seen["docs"] is False
    assert seen["device"] == "auto"
    main(["serve", str(folder), "--device", "CPU"])
    assert seen["device"] == "cpu"
    with pytest.raises(SystemExit) as bad:
        main(["serve", str(folder), "--device", "tpu"])
    assert bad.value.code == 2

"""The HTTP app: an OpenAI-compatible ``POST /v1/embeddings`` that applies the adapter to queries only.

Any OpenAI client (any language, LangChain, LlamaIndex, ...) can call it: point its base URL at
``http://HOST:PORT/v1``. Each request says whether its texts are queries (the default: the base model's vectors
go through the adapter) or documents (the base model's vectors, unchanged, so an existing index stays valid) with
the extra body field ``input_type``: ``"query"`` / ``"document"`` (also ``"search_query"`` / ``"search_document"``).
With the openai Python client: ``client.embeddings.create(model=..., input=[...], extra_body={"input_type": "document"})``.

Responses follow the OpenAI schema (``encoding_format`` ``"float"`` or ``"base64"``: little-endian float32) and
errors the OpenAI error shape ``{"error": {"message", "type", "code"}}``: 400 for bad input, 401 for a wrong or
missing API key, 408 for a body that arrives too slowly, 413 for too many inputs, too long an input or too large a
body, 503 + Retry-After when the queue is full or a request passes its deadline (``request_timeout_s``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from qadapter.adapters import Adapter, load_adapter
from qadapter.adapters.artifact import check_base_model
from qadapter.encoders import Encoder
from qadapter.errors import ArtifactError
from qadapter.serve.batching import BatcherBusy, DeadlineExceeded, EncodeFn, MicroBatcher
from qadapter.serve.errors import APIError, busy, install_error_handlers
from qadapter.serve.requests import INPUT_TYPES, EmbeddingRequest, check_input, parse_request, read_body
from qadapter.version import __version__

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for and how long it may take; :func:`create_app` takes these as keywords.

    ``max_batch`` texts at most per encoder call; ``batch_wait_ms`` how long the batcher waits for more requests
    after the first (0: take what is queued; batches still form under load). ``max_inputs`` texts per request,
    ``max_chars`` characters per text and ``max_body_bytes`` per body bound the work one request can ask for.
    ``request_timeout_s`` is each request's deadline: its body must arrive, and its texts be encoded, within it.
    The queue is bounded by ``max_queue`` texts and by time: a request expected to wait past its deadline gets a
    503 with Retry-After at once (the openai client retries those).
    """

    max_batch: int = 64
    max_inputs: int = 2048
    max_chars: int = 32_768
    max_body_bytes: int = 16 * 1024 * 1024
    batch_wait_ms: float = 0.0
    max_queue: int | None = 65_536
    request_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_inputs", "max_chars", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")

    @classmethod
    def from_keywords(cls, keywords: dict[str, Any]) -> ServeLimits:
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(keywords) - set(valid))
        if unknown:
            raise TypeError(f"unknown serve limit(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        return cls(**keywords)


def create_app(
    adapter: Adapter | str | Path,
    encoder: Encoder,
    *,
    api_key: str | None = None,
    model_name: str | None = None,
    warmup: bool = True,
    docs: bool = False,
    **limits: Any,
) -> FastAPI:
    """Build the FastAPI app serving ``encoder`` with ``adapter`` applied to query embeddings.

    ``adapter`` is an :class:`Adapter` or an adapter folder; either must have been trained on ``encoder``'s model
    and dimension. ``api_key``: when set, every ``/v1`` request (and ``/docs``) must send
    ``Authorization: Bearer <api_key>``. ``docs`` serves ``/docs`` and ``/openapi.json`` (off by default).
    ``limits`` are the fields of :class:`ServeLimits`.
    """
    settings = ServeLimits.from_keywords(limits)
    fitted, default_name = resolve_adapter(adapter, encoder)
    served_model = model_name or default_name
    batcher = MicroBatcher(
        make_encode_fn(fitted, encoder, settings.max_batch),
        max_batch=settings.max_batch,
        max_wait_ms=settings.batch_wait_ms,
        max_pending=settings.max_queue,
        timeout_s=settings.request_timeout_s,
    )
    summary = f"{served_model} ({fitted.kind} adapter, dim {encoder.dim}) with base model {encoder.name}"
    app = FastAPI(
        title="qadapter embeddings",
        version=__version__,
        lifespan=_lifespan(batcher, warmup=warmup, summary=summary),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.batcher = batcher
    app.state.adapter = fitted
    install_error_handlers(app)
    check_key = KeyCheck(api_key)
    _add_health(app, batcher, {"model": served_model, "base_model": encoder.name, "adapter": fitted.kind})
    _add_models(app, check_key, served_model)
    _add_embeddings(app, check_key, batcher, settings, served_model, encoder.dim)
    if docs:
        _add_docs(app, check_key)
    return app


def resolve_adapter(adapter: Adapter | str | Path, encoder: Encoder) -> tuple[Adapter, str]:
    """The adapter (loaded if a folder) and the default served-model name, refusing a foreign base model."""
    if isinstance(adapter, str | Path):
        loaded = load_adapter(adapter, expected_model=encoder.name)
        return _check_dim(loaded, encoder), f"qadapter/{Path(adapter).name}"
    check_base_model("adapter", adapter.base_model, encoder.name)
    return _check_dim(adapter, encoder), f"qadapter/{adapter.base_model or encoder.name}"


def _check_dim(adapter: Adapter, encoder: Encoder) -> Adapter:
    if adapter.dim != encoder.dim:
        raise ArtifactError(
            f"the adapter expects {adapter.dim}-dimensional embeddings ({adapter.base_model or 'unknown model'}), "
            f"but the encoder {encoder.name} makes {encoder.dim}-dimensional ones; serve it with its base model"
        )
    return adapter


def make_encode_fn(adapter: Adapter, encoder: Encoder, max_batch: int) -> EncodeFn:
    """The batcher's encoder call: base vectors, the adapter for queries, and token counts for ``usage``."""
    count_tokens = _token_counter(encoder)

    def encode(texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        vectors = encoder.encode(texts, kind="query" if kind == "query" else "document", batch_size=max_batch)
        if kind == "query":
            vectors = adapter.transform(vectors)
        return vectors, count_tokens(texts)

    return encode


def _lifespan(
    batcher: MicroBatcher, *, warmup: bool, summary: str
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        if warmup:  # the first encoder call is slow (lazy init); pay it before /health answers
            await batcher.run_in_worker(["warm-up query"], "query")
            n = min(16, batcher.max_batch)  # then measure the cost per text, so the queue's time bound holds
            await batcher.calibrate([f"calibration query number {i}" for i in range(n)])
        logger.info("serving %s", summary)
        try:
            yield
        finally:
            await batcher.stop()

    return lifespan


class KeyCheck:
    """``Authorization: Bearer <key>`` when a key is set (compared in constant time); a 401 otherwise."""

    def __init__(self, api_key: str | None) -> None:
        self.expected = api_key.encode() if api_key else None

    def __call__(self, request: Request) -> None:
        if self.expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise APIError(
                401, "missing API key: send the header 'Authorization: Bearer <key>'", "missing_api_key"
            )
        if not hmac.compare_digest(given.strip().encode(), self.expected):
            raise APIError(401, "incorrect API key provided", "invalid_api_key")


def _add_health(app: FastAPI, batcher: MicroBatcher, about: dict[str, Any]) -> None:
    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness and readiness (no API key): 200 once warmed up; 503 while the queue is over its bounds or
        requests recently missed their deadline."""
        overloaded = batcher.overloaded()
        stats = batcher.stats
        body = {
            "status": "overloaded" if overloaded else "ok",
            **about,
            "dim": app.state.adapter.dim,
            "version": __version__,
            "queue": {
                "texts": batcher.pending,
                "max_texts": batcher.max_pending,
                "expected_wait_s": round(batcher.expected_wait_s(), 3),
                "timeout_s": batcher.timeout_s,
            },
            "batches": stats.batches,
            "requests": stats.requests,
            "texts": stats.texts,
            "largest_batch": stats.largest_batch,
            "encoder_calls": stats.encoder_calls,
            "dropped": stats.dropped,
            "deadline_misses": stats.deadline_misses,
        }
        return JSONResponse(body, status_code=503 if overloaded else 200)


def _add_models(app: FastAPI, check_key: KeyCheck, served_model: str) -> None:
    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_key(request)
        return {"object": "list", "data": [{"id": served_model, "object": "model", "owned_by": "qadapter"}]}


def _add_embeddings(
    app: FastAPI, check_key: KeyCheck, batcher: MicroBatcher, limits: ServeLimits, served_model: str, dim: int
) -> None:
    async def embeddings(request: Request) -> Response:
        check_key(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.request_timeout_s  # one deadline for the body, the queue and encoding
        body = await read_body(request, limits.max_body_bytes, limits.request_timeout_s)
        parsed = parse_request(body)
        texts = check_input(parsed.input, max_inputs=limits.max_inputs, max_chars=limits.max_chars)
        if parsed.dimensions is not None and parsed.dimensions != dim:
            raise APIError(
                400,
                f"this server returns {dim}-dimensional embeddings; omit 'dimensions' or set it to {dim}",
                "invalid_dimensions",
            )
        kind = INPUT_TYPES[parsed.input_type]
        vectors, tokens = await encode_while_connected(request, batcher, texts, kind, deadline - loop.time())
        return _embedding_response(vectors, tokens, parsed.encoding_format, served_model)

    schema = {
        "requestBody": {"content": {"application/json": {"schema": EmbeddingRequest.model_json_schema()}}}
    }
    for path in ("/v1/embeddings", "/embeddings"):  # some clients are configured without the /v1 prefix
        app.add_api_route(
            path, embeddings, methods=["POST"], openapi_extra=schema, include_in_schema=path.startswith("/v1")
        )


def _add_docs(app: FastAPI, check_key: KeyCheck) -> None:
    """``/openapi.json`` and ``/docs`` under the same key rule as the API."""
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        check_key(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> Response:
        check_key(request)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="qadapter embeddings")


async def encode_while_connected(
    request: Request, batcher: MicroBatcher, texts: list[str], kind: str, timeout_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Submit to the batcher, taking the work off the queue if the client disconnects before it is encoded."""
    job = asyncio.ensure_future(batcher.submit(texts, kind, timeout_s=timeout_s))
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()  # cancels its queued future: the worker skips it
    if job.cancelled():
        logger.info("client disconnected; dropped its %d queued texts", len(texts))
        raise APIError(499, "the client closed the request", "client_closed")
    try:
        return job.result()
    except BatcherBusy as exc:
        raise busy(f"server busy: {exc}", "server_busy", exc.retry_after_s) from None
    except DeadlineExceeded as exc:
        raise busy(f"request timed out: {exc}", "timeout", batcher.expected_wait_s()) from None
    except Exception as exc:
        logger.error("encoding failed: %s", exc)
        raise APIError(500, f"encoding failed: {exc}", "encoding_failed", "server_error") from exc


async def _client_gone(request: Request) -> None:
    """Return when the client disconnects (the body was read, so the next ASGI message is the disconnect)."""
    with contextlib.suppress(Exception):
        while (await request.receive())["type"] != "http.disconnect":
            pass


def _embedding_response(
    vectors: np.ndarray, tokens: np.ndarray, encoding_format: str, model: str
) -> Response:
    n_tokens = int(np.sum(tokens))
    payload = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }
    return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")


def _encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai Python client asks for by default
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()


def _token_counter(encoder: Encoder) -> Callable[[list[str]], np.ndarray]:
    """Count tokens for ``usage`` with the model's own tokenizer when it has one (else whitespace words)."""
    tokenizer = getattr(encoder, "tokenizer", None)
    if callable(tokenizer):
        max_length = getattr(encoder, "max_seq_length", None)

        def count(texts: list[str]) -> np.ndarray:
            ids = tokenizer(
                texts,
                truncation=max_length is not None,
                max_length=max_length,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            return np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(texts))

        return count
    return lambda texts: np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))

"""The HTTP app: an OpenAI-compatible ``POST /v1/embeddings`` that applies the adapter to queries only.

Any OpenAI client (any language, LangChain, LlamaIndex, ...) can call it: point its base URL at
``http://HOST:PORT/v1``. Each request says whether its texts are queries (the default: the base model's vectors
go through the adapter) or documents (the base model's vectors, unchanged, so an existing index stays valid) with
the extra body field ``input_type``: ``"query"`` / ``"document"`` (also ``"search_query"`` / ``"search_document"``).
With the openai Python client: ``client.embeddings.create(model=..., input=[...], extra_body={"input_type": "document"})``.

Responses follow the OpenAI schema (``encoding_format`` ``"float"`` or ``"base64"``: little-endian float32) and
errors the OpenAI error shape ``{"error": {"message", "type", "code"}}``: 400 for bad input, 401 for a wrong or
missing API key, 413 for too many inputs, too long an input or too large a body.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from qadapter.adapters import Adapter, load_adapter
from qadapter.encoders import Encoder
from qadapter.errors import ArtifactError
from qadapter.serve.batching import BatcherBusy, MicroBatcher
from qadapter.version import __version__

logger = logging.getLogger(__name__)

#: ``input_type`` values -> the kind of text the encoder and the adapter see.
INPUT_TYPES: dict[str, str] = {
    "query": "query",
    "search_query": "query",
    "document": "document",
    "search_document": "document",
}


class EmbeddingRequest(BaseModel):
    """The body of ``POST /v1/embeddings``: OpenAI's fields plus ``input_type``. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")

    input: Any
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "document", "search_query", "search_document"] = "query"
    dimensions: int | None = None
    user: str | None = None


class APIError(Exception):
    """An error returned to the client in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        type_: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.type = status, message, code, type_
        self.headers = headers or ({"WWW-Authenticate": "Bearer"} if status == 401 else None)

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "code": self.code, "param": None}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def create_app(
    adapter: Adapter | str | Path,
    encoder: Encoder,
    *,
    api_key: str | None = None,
    model_name: str | None = None,
    max_batch: int = 64,
    max_inputs: int = 2048,
    max_chars: int = 32_768,
    max_body_bytes: int = 16 * 1024 * 1024,
    batch_wait_ms: float = 0.0,
    max_queue: int | None = 65_536,
    warmup: bool = True,
) -> FastAPI:
    """Build the FastAPI app serving ``encoder`` with ``adapter`` applied to query embeddings.

    ``adapter`` is an :class:`Adapter` or an adapter folder (loaded and checked against ``encoder.dim``).
    ``api_key``: when set, every ``/v1`` request must send ``Authorization: Bearer <api_key>``.
    ``max_batch`` texts at most per encoder call; ``batch_wait_ms`` how long the batcher waits for more requests
    after the first (0: take what is queued; batches still form under load). ``max_inputs`` texts per request,
    ``max_chars`` characters per text and ``max_body_bytes`` per body bound the work one request can ask for;
    past ``max_queue`` texts waiting, requests get a 503 with Retry-After (the openai client retries those).
    """
    if isinstance(adapter, str | Path):
        default_name = f"qadapter/{Path(adapter).name}"
        adapter = load_adapter(adapter, expected_dim=encoder.dim)
    else:
        default_name = f"qadapter/{adapter.base_model or encoder.name}"
        if adapter.dim != encoder.dim:
            raise ArtifactError(
                f"the adapter expects {adapter.dim}-dimensional embeddings ({adapter.base_model or 'unknown model'}), "
                f"but the encoder {encoder.name} makes {encoder.dim}-dimensional ones; serve it with its base model"
            )
    for name, value in {"max_batch": max_batch, "max_inputs": max_inputs, "max_chars": max_chars}.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    served_model = model_name or default_name
    dim = encoder.dim
    count_tokens = _token_counter(encoder)
    fitted: Adapter = adapter

    def encode(texts: list[str], kind: str) -> tuple[np.ndarray, np.ndarray]:
        vectors = encoder.encode(texts, kind="query" if kind == "query" else "document", batch_size=max_batch)
        if kind == "query":
            vectors = fitted.transform(vectors)
        return vectors, count_tokens(texts)

    batcher = MicroBatcher(encode, max_batch=max_batch, max_wait_ms=batch_wait_ms, max_pending=max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        if warmup:  # the first encoder call is slow (lazy init); pay it before /health answers
            await batcher.run_in_worker(["warm-up query"], "query")
        logger.info(
            "serving %s (%s adapter, dim %d) with base model %s", served_model, fitted.kind, dim, encoder.name
        )
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="qadapter embeddings", version=__version__, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.adapter = fitted
    expected_key = api_key.encode() if api_key else None

    def check_key(request: Request) -> None:
        if expected_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise APIError(
                401, "missing API key: send the header 'Authorization: Bearer <key>'", "missing_api_key"
            )
        if not hmac.compare_digest(given.strip().encode(), expected_key):
            raise APIError(401, "incorrect API key provided", "invalid_api_key")

    @app.exception_handler(APIError)
    async def api_error_handler(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return APIError(
            exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code
        ).response()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and readiness: answers once the model is loaded and warmed up. Needs no API key."""
        return {
            "status": "ok",
            "model": served_model,
            "base_model": encoder.name,
            "adapter": fitted.kind,
            "dim": dim,
            "version": __version__,
            "batches": batcher.stats.batches,
            "requests": batcher.stats.requests,
            "texts": batcher.stats.texts,
            "largest_batch": batcher.stats.largest_batch,
        }

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_key(request)
        return {"object": "list", "data": [{"id": served_model, "object": "model", "owned_by": "qadapter"}]}

    async def embeddings(request: Request) -> Response:
        check_key(request)
        body = await _read_body(request, max_body_bytes)
        parsed = _parse_request(body)
        texts = _check_input(parsed.input, max_inputs=max_inputs, max_chars=max_chars)
        if parsed.dimensions is not None and parsed.dimensions != dim:
            raise APIError(
                400,
                f"this server returns {dim}-dimensional embeddings; omit 'dimensions' or set it to {dim}",
                "invalid_dimensions",
            )
        try:
            vectors, tokens = await batcher.submit(texts, INPUT_TYPES[parsed.input_type])
        except BatcherBusy as exc:
            raise APIError(
                503, f"server busy: {exc}", "server_busy", "server_error", {"Retry-After": "1"}
            ) from None
        except Exception as exc:
            logger.error("encoding failed: %s", exc)
            raise APIError(500, f"encoding failed: {exc}", "encoding_failed", "server_error") from exc
        n_tokens = int(np.sum(tokens))
        payload = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode_vector(v, parsed.encoding_format)}
                for i, v in enumerate(vectors)
            ],
            "model": served_model,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
        }
        return Response(json.dumps(payload, separators=(",", ":")), media_type="application/json")

    schema = {
        "requestBody": {"content": {"application/json": {"schema": EmbeddingRequest.model_json_schema()}}}
    }
    for path in ("/v1/embeddings", "/embeddings"):  # some clients are configured without the /v1 prefix
        app.add_api_route(
            path, embeddings, methods=["POST"], openapi_extra=schema, include_in_schema=path.startswith("/v1")
        )
    return app


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


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing (413) as soon as it passes ``limit`` bytes rather than after buffering it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(
            413, f"request body is {int(declared)} bytes; the limit is {limit} bytes", "request_too_large"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"request body is over the limit of {limit} bytes", "request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_request(body: bytes) -> EmbeddingRequest:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"request body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(
            400, f"request body must be a JSON object, got {type(data).__name__}", "invalid_request"
        )
    if "input" not in data:
        raise APIError(400, "missing required field 'input' (a string or a list of strings)", "missing_input")
    try:
        return EmbeddingRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            valid = ", ".join(EmbeddingRequest.model_fields)
            message = f"unknown field '{field}'; valid fields: {valid}"
        else:
            message = f"invalid '{field}': {error['msg']} (got {error.get('input')!r})"
        raise APIError(400, message, "invalid_request") from None


def _check_input(value: Any, *, max_inputs: int, max_chars: int) -> list[str]:
    """``input`` as a list of non-empty strings, or a 400/413 that says what is wrong with it."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list):
        raise APIError(
            400, f"'input' must be a string or a list of strings, got {type(value).__name__}", "invalid_input"
        )
    if not texts:
        raise APIError(400, "'input' is an empty list; send at least one text", "invalid_input")
    if len(texts) > max_inputs:
        raise APIError(
            413,
            f"got {len(texts)} inputs; the limit is {max_inputs} per request, split it into smaller requests",
            "too_many_inputs",
        )
    for i, text in enumerate(texts):
        if isinstance(text, str):
            if not text:
                raise APIError(
                    400, f"input {i} is an empty string; every input needs some text", "invalid_input"
                )
            if len(text) > max_chars:
                raise APIError(
                    413,
                    f"input {i} has {len(text)} characters; the limit is {max_chars} per input",
                    "input_too_long",
                )
            continue
        if isinstance(text, int | list) and not isinstance(text, bool):
            raise APIError(
                400,
                "token-id inputs are not supported: this server embeds text, send strings "
                "(with LangChain's OpenAIEmbeddings, set check_embedding_ctx_length=False)",
                "invalid_input",
            )
        raise APIError(400, f"input {i} must be a string, got {type(text).__name__}", "invalid_input")
    return texts


def _encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai Python client asks for by default
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()

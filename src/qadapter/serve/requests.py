"""Reading and checking a ``POST /v1/embeddings`` body, all before any work is queued.

Every way a body can be wrong (not JSON, nested too deep, a number too long to parse, an unknown field, a text
that is empty, too long or not valid Unicode) is a 400/413 in OpenAI's error shape for that request alone, so a
bad request never reaches the batcher and never fails the requests it would have been batched with.
"""

from __future__ import annotations

import asyncio
import json
import reprlib
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect

from qadapter.serve.errors import APIError

#: ``input_type`` values -> the kind of text the encoder and the adapter see.
INPUT_TYPES: dict[str, str] = {
    "query": "query",
    "search_query": "query",
    "document": "document",
    "search_document": "document",
}

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict, _short.maxlevel = 60, 60, 5, 5, 3


class EmbeddingRequest(BaseModel):
    """The body of ``POST /v1/embeddings``: OpenAI's fields plus ``input_type``. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")

    input: Any
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "document", "search_query", "search_document"] = "query"
    dimensions: int | None = None
    user: str | None = None


async def read_body(request: Request, limit: int, timeout_s: float | None) -> bytes:
    """Read the body within ``timeout_s`` (408 for a client that sends too slowly) and ``limit`` bytes (413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
        raise APIError(
            413, f"request body is {int(declared)} bytes; the limit is {limit} bytes", "request_too_large"
        )
    try:
        return await asyncio.wait_for(_read_limited(request, limit), timeout_s)
    except ClientDisconnect:
        raise APIError(
            499, "the client closed the connection while sending the body", "client_closed"
        ) from None
    except TimeoutError:
        raise APIError(
            408, f"the request body did not arrive within {timeout_s:g} s; send it faster", "request_timeout"
        ) from None


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise APIError(413, f"request body is over the limit of {limit} bytes", "request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_request(body: bytes) -> EmbeddingRequest:
    """The body as an :class:`EmbeddingRequest`, or a 400 saying what is wrong with it."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise APIError(
            400, "request body is nested too deeply to parse; send a flat JSON object", "invalid_json"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:  # incl. JSONDecodeError and integers too long to convert
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
            message = f"invalid '{field}': {error['msg']} (got {_safe_repr(error.get('input'))})"
        raise APIError(400, message, "invalid_request") from None


def _safe_repr(value: Any) -> str:
    """A short repr that cannot fail (deep nesting, integers past Python's digit limit)."""
    try:
        return _short.repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"


def check_input(value: Any, *, max_inputs: int, max_chars: int) -> list[str]:
    """``input`` as a list of non-empty, valid-Unicode strings, or a 400/413 that says what is wrong with it."""
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
        _check_text(i, text, max_chars)
    return texts


def _check_text(i: int, text: Any, max_chars: int) -> None:
    if not isinstance(text, str):
        if isinstance(text, int | list) and not isinstance(text, bool):
            raise APIError(
                400,
                "token-id inputs are not supported: this server embeds text, send strings "
                "(with LangChain's OpenAIEmbeddings, set check_embedding_ctx_length=False)",
                "invalid_input",
            )
        raise APIError(400, f"input {i} must be a string, got {type(text).__name__}", "invalid_input")
    if not text:
        raise APIError(400, f"input {i} is an empty string; every input needs some text", "invalid_input")
    if len(text) > max_chars:
        raise APIError(
            413, f"input {i} has {len(text)} characters; the limit is {max_chars} per input", "input_too_long"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" that JSON escapes can carry
        raise APIError(
            400,
            f"input {i} has an unpaired surrogate {text[exc.start]!r} at character {exc.start}; "
            "send valid Unicode text",
            "invalid_input",
        ) from None

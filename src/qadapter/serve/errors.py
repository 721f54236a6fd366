"""Errors in OpenAI's shape ``{"error": {"message", "type", "code", "param"}}``, for every path out of the app.

Whatever goes wrong (a bad body, an unknown route, an unexpected exception) the client gets JSON it can parse,
never a plain-text 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


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


def busy(message: str, code: str, retry_after_s: float) -> APIError:
    """A 503 with ``Retry-After`` (whole seconds, at least 1): the openai client retries these by itself."""
    retry = str(max(1, int(retry_after_s + 0.999)))
    return APIError(503, message, code, "server_error", {"Retry-After": retry})


def install_error_handlers(app: FastAPI) -> None:
    """Answer :class:`APIError`, Starlette's HTTP errors and any unexpected exception in the error shape."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return APIError(
            exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code
        ).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error on %s %s: %r", request.method, request.url.path, exc)
        message = f"internal error ({type(exc).__name__}); see the server log"
        return APIError(500, message, "internal_error", "server_error").response()

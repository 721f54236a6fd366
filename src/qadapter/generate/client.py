"""An async chat-completions client for any OpenAI-compatible endpoint, with retries we control.

The official ``openai`` client does the HTTP; its own retries are switched off (``max_retries=0``) so that this
module decides when to retry: exponential backoff with full jitter on timeouts, connection errors, 408/409/429 and
5xx, and the server's ``Retry-After`` (or ``retry-after-ms``) honoured exactly and shared with every worker through
the rate limiter. Errors that retrying cannot fix (bad key, unknown model, no quota) stop the run at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qadapter.core.extras import require
from qadapter.errors import QadapterError
from qadapter.generate.endpoint import resolve_llm_base_url
from qadapter.generate.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 600.0


class RequestFailed(Exception):
    """A request still failed after every retry; the chunk is left for the next run."""


@dataclass(frozen=True)
class ChatAnswer:
    """One completed answer and what it cost."""

    text: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    usage_reported: bool = True


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)
    retry_after_waits: int = 0


def retry_after_seconds(headers: Any, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); None if absent."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token for English), good enough for limits and dry runs."""
    return max(1, len(text) // 4)


class ChatClient:
    """Sends chat requests with backoff, rate limits and usage accounting."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        temperature: float | None = 0.7,
        max_tokens: int | None = None,
        json_mode: bool = False,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        openai = require("openai", extra="openai", purpose="generating queries with an LLM")
        self._openai = openai
        self.model = model
        self.base_url = resolve_llm_base_url(base_url)
        api_key = os.environ.get(api_key_env)
        if not api_key:
            if self.base_url is None:
                raise QadapterError(
                    f"no API key: set the environment variable {api_key_env} (or pass --api-key-env VAR), "
                    "or pass --llm-base-url for a local server that needs none"
                )
            api_key = "not-needed"  # local servers (vLLM, Ollama, llama.cpp) accept any key
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=0
        )
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.limiter = limiter or RateLimiter()
        self.stats = ClientStats()
        self._rng = rng or random.Random()
        self._sleep = sleep

    @property
    def endpoint(self) -> str:
        return self.base_url or "api.openai.com"

    async def aclose(self) -> None:
        await self._client.close()

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff: uniform in [0, min(max, base * 2**attempt)]."""
        return self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2**attempt)))

    def _classify(self, exc: Exception) -> tuple[str, float | None]:
        """Return (kind, retry_after) for a retryable error; raise QadapterError for one that retrying cannot fix."""
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return "timeout", None
        if isinstance(exc, openai.APIConnectionError):
            return "connection", None
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            code = getattr(exc, "code", None)
            if status == 429 and code == "insufficient_quota":
                raise QadapterError(
                    f"{self.endpoint}: no quota left on this account ({exc.message}); add credit and re-run"
                )
            if status in RETRY_STATUSES or status >= 500:
                return f"http {status}", retry_after_seconds(exc.response.headers)
            hint = {
                401: "check the API key in the environment variable named by --api-key-env",
                403: "the key may not have access to this model",
                404: f"check --model ({self.model!r}) and --llm-base-url ({self.endpoint})",
            }.get(status, "check --model and the request settings")
            if status == 400 and self.json_mode:
                hint += "; this server may not support JSON mode, try without --json-mode"
            raise QadapterError(f"{self.endpoint} answered HTTP {status}: {exc.message}; {hint}") from None
        if isinstance(exc, openai.APIResponseValidationError | ValueError):
            return "bad response", None
        raise exc

    async def complete(self, messages: list[dict[str, str]], *, estimated_tokens: int = 0) -> ChatAnswer:
        """One chat completion, retried on transient failures. Raises :class:`RequestFailed` when retries run out."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        last = ""
        for attempt in range(self.max_retries + 1):
            await self.limiter.acquire(estimated_tokens)
            self.stats.requests += 1
            try:
                response = await self._client.chat.completions.create(**kwargs)
            except Exception as exc:
                kind, retry_after = self._classify(exc)
                self.stats.errors[kind] += 1
                self.limiter.settle(estimated_tokens, 0)
                last = f"{kind}: {exc}"
                if attempt == self.max_retries:
                    break
                if retry_after is not None:
                    retry_after = min(retry_after, MAX_RETRY_AFTER)
                    self.stats.retry_after_waits += 1
                    self.limiter.pause(retry_after)
                    delay = retry_after + self._rng.uniform(0.0, 0.1 * retry_after + 0.05)
                else:
                    delay = self.backoff(attempt)
                logger.info(
                    "retrying after %s in %.2fs (attempt %d of %d)",
                    kind,
                    delay,
                    attempt + 1,
                    self.max_retries,
                )
                self.stats.retries += 1
                await self._sleep(delay)
                continue
            return self._answer(response, messages, estimated_tokens)
        raise RequestFailed(f"{self.max_retries + 1} attempts failed; last error {last}")

    def _answer(self, response: Any, messages: list[dict[str, str]], estimated_tokens: int) -> ChatAnswer:
        choices = getattr(response, "choices", None) or []
        choice = choices[0] if choices else None
        text = choice.message.content if choice is not None and choice.message is not None else None
        finish = getattr(choice, "finish_reason", None) if choice is not None else None
        usage = getattr(response, "usage", None)
        if usage is not None and usage.prompt_tokens is not None:
            prompt_tokens, completion_tokens, reported = (
                usage.prompt_tokens,
                usage.completion_tokens or 0,
                True,
            )
        else:  # some local servers report no usage; estimate so limits and totals stay meaningful
            prompt_tokens = estimate_tokens("".join(m["content"] for m in messages))
            completion_tokens, reported = estimate_tokens(text or ""), False
        self.limiter.settle(estimated_tokens, prompt_tokens + completion_tokens)
        return ChatAnswer(text, prompt_tokens, completion_tokens, finish, reported)

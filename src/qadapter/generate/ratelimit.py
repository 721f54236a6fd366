"""Client-side rate limits: requests per minute, tokens per minute, and a shared pause after a 429.

Providers count both requests and tokens; staying under both avoids paying for 429s with wall time. The limiter
is a pair of token buckets refilled continuously. Token costs are estimated before a call and corrected with the
real usage after it, so a run converges on the true rate. When the server says ``Retry-After``, every worker
waits, not only the one that got the 429, because the limit is shared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class TokenBucket:
    """``rate`` units per second, holding at most ``capacity``. A request larger than the capacity waits for a full
    bucket and then takes it into debt, so it is delayed but never refused."""

    def __init__(self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._level = capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0 when it can be taken now)."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self._level >= need else (need - self._level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self._level -= amount

    def give_back(self, amount: float) -> None:
        """Correct an estimate: a positive amount returns unused units, a negative one charges more."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class RateLimiter:
    """Waits as long as needed before each request to honour ``rpm``, ``tpm`` and any Retry-After pause.

    Buckets hold a few seconds' worth (not a full minute), so requests are spread evenly instead of bursting at the
    start of each minute, which is what providers' sliding windows reward.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        burst_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.requests = (
            TokenBucket(rpm / 60.0, max(1.0, rpm / 60.0 * burst_seconds), clock=clock) if rpm else None
        )
        self.tokens = (
            TokenBucket(tpm / 60.0, max(1.0, tpm / 60.0 * burst_seconds), clock=clock) if tpm else None
        )
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (a Retry-After from the server)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self, tokens: float = 0.0) -> None:
        """Wait until one request of about ``tokens`` tokens may be sent, then take it from the buckets."""
        async with self._lock:  # one waiter at a time keeps the order fair (first come, first served)
            while True:
                delay = max(0.0, self._paused_until - self._clock())
                if self.requests is not None:
                    delay = max(delay, self.requests.wait_time(1.0))
                if self.tokens is not None and tokens > 0:
                    delay = max(delay, self.tokens.wait_time(tokens))
                if delay <= 0:
                    break
                self.waited += delay
                await self._sleep(delay)
            if self.requests is not None:
                self.requests.take(1.0)
            if self.tokens is not None and tokens > 0:
                self.tokens.take(tokens)

    def settle(self, estimated: float, actual: float) -> None:
        """Replace the estimate taken in :meth:`acquire` by the real token count of the answer."""
        if self.tokens is not None:
            self.tokens.give_back(estimated - actual)

"""Progress for long work: a bar on a terminal, plain log lines at a steady interval elsewhere (CI logs, pipes).

Every stage reports progress through :func:`progress`, so a run whose output is not a terminal still says what it is
doing (the ``qadapter.progress`` logger; the CLI shows it) instead of going silent for minutes.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

logger = logging.getLogger("qadapter.progress")

#: seconds between two progress lines when the output is not a terminal (``QADAPTER_PROGRESS_INTERVAL`` overrides)
LINE_INTERVAL = 10.0


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("QADAPTER_PROGRESS_INTERVAL", LINE_INTERVAL)))
    except ValueError:
        return LINE_INTERVAL


class LineProgress:
    """A tqdm-like counter that logs ``desc: done/total unit (share, rate, time left)`` every ``interval`` seconds."""

    def __init__(self, total: int | None, desc: str, unit: str, interval: float | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.interval = _interval() if interval is None else interval
        self.n = 0
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._logged = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._log(now)

    def set_postfix(self, values: dict[str, Any] | None = None, **kwargs: Any) -> None:
        items = {**(values or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def _log(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.n / elapsed
        if self.total:
            left = (self.total - self.n) / rate if rate > 0 else float("inf")
            eta = f", ~{left:.0f} s left" if left != float("inf") else ""
            line = f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}s ({self.n / self.total:.0%}, {rate:,.1f}/s{eta})"
        else:
            line = f"{self.desc}: {self.n:,} {self.unit}s ({rate:,.1f}/s)"
        if self.postfix:
            line += f" {self.postfix}"
        logger.info(line)
        self._logged = True

    def close(self) -> None:
        if self._logged or time.monotonic() - self._start >= self.interval:
            elapsed = time.monotonic() - self._start
            logger.info("%s: done, %s %ss in %.1f s", self.desc, f"{self.n:,}", self.unit, elapsed)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Off:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, values: dict[str, Any] | None = None, **kwargs: Any) -> None: ...
    def set_description(self, desc: str) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> None: ...


def progress(total: int | None, desc: str, unit: str = "item", enabled: bool = True) -> Any:
    """A progress reporter with ``update(n)``, ``set_postfix(...)`` and ``close()`` (also a context manager).

    On a terminal it is a tqdm bar; otherwise :class:`LineProgress`; with ``enabled=False`` it does nothing.
    """
    if not enabled:
        return _Off()
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
    return LineProgress(total, desc, unit)

"""JSON parsing for files users hand us: every way a hostile or broken file can fail becomes one DataError.

``json.loads`` alone raises a bare ValueError for integers over 4,300 digits, a RecursionError for deep nesting,
accepts ``NaN``/``Infinity``/``1e400`` (non-finite numbers that later poison scores or crash ``int()``), and lets
lone surrogates (``"\\ud800"``) through, which then fail when the text is written back as UTF-8.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from qadapter.errors import DataError

_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is too large (not a finite number)")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads(text: str, *, where: str, whole_file: bool = False) -> Any:
    """Parse ``text`` as JSON, or raise a one-line DataError that starts with ``where``.

    ``whole_file``: ``text`` is a whole file, so a syntax error names ``where:line`` (a JSONL line names itself).
    """
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        if whole_file:
            raise DataError(
                f"{where}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        raise DataError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read; flatten the data") from None
    except ValueError as exc:  # huge integers, non-finite numbers
        message = str(exc).split(";")[0]
        raise DataError(f"{where}: not usable JSON ({message})") from None
    if _MAYBE_SURROGATE.search(text):
        check_encodable(value, where=where)
    return value


def check_encodable(value: Any, *, where: str) -> None:
    """Refuse text that cannot be written as UTF-8 (a lone surrogate escaped as ``\\ud800`` in JSON)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(
            f"{where}: text contains a lone surrogate (an escape like \\ud800 without its pair), which is not "
            "valid Unicode; fix the text where it was exported"
        ) from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply to read; flatten the data") from None

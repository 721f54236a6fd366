"""Read the questions out of a chat model's answer.

Models wrap JSON in code fences, add a sentence before it, return a list instead of an object, number their
questions, or stop half-way. This module accepts every well-formed variant and raises :class:`MalformedAnswer` for
the rest, so the caller asks again instead of silently keeping a truncated or empty answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_NUMBERED = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022]|Q\d{1,3}[:.)])\s+(.+?)\s*$")
_KEY_NUMBER = re.compile(r"(\d+)\s*$")


class MalformedAnswer(ValueError):
    """The answer holds no usable list of questions (invalid or truncated JSON, prose, an empty list)."""


def _item_text(item: Any) -> str | None:
    """A question from one list item: a string, or an object with a ``question``/``query``/``text`` string."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        text = item.get("question") or item.get("query") or item.get("text")
        return text if isinstance(text, str) else None
    return None


def _strings_from_list(value: list[Any]) -> list[str] | None:
    out = [_item_text(item) for item in value]
    return None if any(text is None for text in out) else [text for text in out if text is not None]


def _strings_from_dict(value: dict[str, Any]) -> list[str] | None:
    for key in ("questions", "queries", "items", "results"):
        if key in value:
            return _strings_from(value[key])
    if value and all(isinstance(v, str) for v in value.values()):
        # {"question_1": ..., "question_2": ...}: keep the model's numbering, not dict order.
        def order(item: tuple[int, str]) -> tuple[int, int]:
            match = _KEY_NUMBER.search(str(item[1]))
            return (int(match.group(1)) if match else 10**6, item[0])

        keys = sorted(enumerate(value), key=order)
        return [value[k] for _, k in keys]
    return None


def _strings_from(value: Any) -> list[str] | None:
    """Questions from a decoded JSON value, or None when its shape is not one we know."""
    if isinstance(value, list):
        return _strings_from_list(value)
    if isinstance(value, dict):
        return _strings_from_dict(value)
    return None


def _decode_first_json(text: str) -> Any:
    """Decode the first complete JSON object or array in ``text``; raise ValueError when there is none."""
    decoder = json.JSONDecoder()
    last_error: Exception | None = None
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError as exc:
            last_error = exc
            continue
        if isinstance(value, dict | list):
            return value
    raise ValueError(str(last_error) if last_error else "no JSON object or array found")


def parse_questions(text: str | None) -> list[str]:
    """The questions in a model's answer: a JSON object or list (fenced or not), or a numbered/bulleted list.

    Raises :class:`MalformedAnswer` when nothing usable is found, including JSON that starts but never ends
    (an answer cut off by ``max_tokens``): half an answer is re-requested, not kept.
    """
    if text is None or not text.strip():
        raise MalformedAnswer("empty answer")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    json_error: str | None = None
    for candidate in candidates:
        try:
            value = _decode_first_json(candidate)
        except ValueError as exc:
            json_error = json_error or str(exc)
            continue
        questions = _strings_from(value)
        if questions is None:
            raise MalformedAnswer(f"JSON of an unexpected shape: {json.dumps(value)[:120]}")
        questions = [q.strip() for q in questions if q.strip()]
        if not questions:
            raise MalformedAnswer("the answer's list of questions is empty")
        return questions
    stripped = text.strip()
    if stripped.startswith(("{", "[", "```")):
        raise MalformedAnswer(f"invalid or truncated JSON ({json_error})")
    listed = [m.group(1) for line in text.splitlines() if (m := _NUMBERED.match(line))]
    listed = [q.strip().strip('"').strip() for q in listed]
    listed = [q for q in listed if q]
    if len(listed) >= 1:
        return listed
    raise MalformedAnswer(f"no JSON and no numbered list in the answer: {stripped[:80]!r}")

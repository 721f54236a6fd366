"""One rule for every id and split name that enters a workspace.

Ids end up as columns of ``qrels/<split>.tsv`` (tab-separated, one judgement per line) and split names end up as
file names, so a tab, a newline or any other control character in them would silently corrupt those files. Every
entry point (import, ingest, query logs, generate, the workspace readers and writers) calls :func:`validate_id`,
so the rule and its message live here once.
"""

from __future__ import annotations

import re

from qadapter.errors import DataError

#: Longer ids are refused: they are almost always a whole text pasted into the id field by mistake.
MAX_ID_LENGTH = 1000

_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
#: Control characters (C0, DEL, C1), Unicode line/paragraph separators and lone surrogates.
_BAD_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def validate_id(value: object, *, where: str, what: str = "id") -> str:
    """``value`` as an id string, or a one-line :class:`DataError` saying where and what was wrong.

    Accepted: strings and whole numbers (written as text) of 1 to ``MAX_ID_LENGTH`` characters without control
    characters (tab, newline, NUL, ...), Unicode line separators or lone surrogates, and without leading or
    trailing whitespace (the qrels reader strips it, so such an id would not match itself).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 10**MAX_ID_LENGTH:  # never build a huge decimal string
            raise DataError(f"{where}: {what} is a number with more than {MAX_ID_LENGTH} digits")
        value = str(value)
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} must be a string, got {type(value).__name__}")
    if not value:
        raise DataError(f"{where}: {what} is empty; every id must be non-empty text")
    if len(value) > MAX_ID_LENGTH:
        raise DataError(
            f"{where}: {what} is {len(value)} characters long; ids may have at most {MAX_ID_LENGTH}"
        )
    bad = _BAD_CHAR.search(value)
    if bad is not None:
        raise DataError(
            f"{where}: {what} {_shown(value)} contains the character U+{ord(bad.group()):04X}; ids may not contain tabs, "
            "newlines, other control characters or lone surrogates (they would corrupt the qrels file); fix the id"
        )
    if value != value.strip():
        raise DataError(f"{where}: {what} {_shown(value)} starts or ends with whitespace; remove it")
    return value


def validate_split_name(value: object, *, where: str) -> str:
    """A qrels split name: it becomes the file name ``qrels/<name>.tsv``, so only letters, digits and ``._+-``."""
    if not isinstance(value, str) or not _SPLIT_NAME.fullmatch(value) or len(value) > 200:
        raise DataError(
            f"{where}: split name {_shown(value)} is not valid; use letters, digits, '.', '_', '+' or '-' "
            "(like 'train', 'test' or 'log-train')"
        )
    return value


def _shown(value: object) -> str:
    """A short, printable form of a bad value for an error message (escapes control characters)."""
    text = ascii(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

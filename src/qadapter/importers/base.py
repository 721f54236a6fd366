"""What every importer provides: a name, a cheap format check, and a loader into corpus, queries and qrels."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.data import Document, Qrels, Query
from qadapter.errors import DataError


@dataclass
class ImportedData:
    """The result of loading a source. ``corpus`` is None when the source only adds queries to an existing one."""

    corpus: list[Document] | None
    queries: list[Query]
    qrels: dict[str, Qrels] = field(default_factory=dict)


@dataclass(frozen=True)
class Importer:
    """One source format.

    ``detect(path)`` answers "is this my format?" without raising; ``load(path, corpus)`` reads it, raising
    :class:`DataError` naming the file (and line) of the first problem. ``needs_corpus`` importers get the
    documents of an existing corpus to resolve their ids or texts against.
    """

    name: str
    description: str
    detect: Callable[[Path], bool]
    load: Callable[[Path, Mapping[str, Document] | None], ImportedData]
    needs_corpus: bool = False


def load_json(path: Path) -> Any:
    """Parse a JSON file, naming the file, line and column of a syntax error."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; a JSON file must be UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def peek_json(path: Path) -> Any:
    """Parse a JSON file for format detection: None when it is not a readable JSON file."""
    if not path.is_file() or path.suffix.lower() != ".json":
        return None
    try:
        return load_json(path)
    except DataError:
        return None


def text_of(value: Any, *, where: str, what: str) -> str:
    """``value`` as non-empty text, or a DataError saying where and what was wrong."""
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: {what} is empty")
    return value

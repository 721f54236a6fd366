"""What every importer provides: a name, a cheap format check, and a loader into corpus, queries and qrels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.data import Document, Qrels, Query, safejson
from qadapter.errors import DataError


@dataclass
class ImportedData:
    """The result of loading a source. ``corpus`` is None when the source only adds queries to an existing one.

    ``numbered`` holds the query ids the importer made up itself (``log-1``, ...): when they clash with queries
    already in the workspace they may be renumbered, whereas an id the source gave is never changed.
    """

    corpus: list[Document] | None
    queries: list[Query]
    qrels: dict[str, Qrels] = field(default_factory=dict)
    numbered: set[str] = field(default_factory=set)


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


#: Bigger JSON files are refused before parsing: they would need many times their size in memory.
MAX_JSON_BYTES = 2 * 1024**3


def load_json(path: Path) -> Any:
    """Parse a JSON file (a byte-order mark is allowed); every failure is a DataError naming the file."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise DataError(
                f"{path}: {path.stat().st_size / 1024**3:.1f} GB is too large to import as one JSON document "
                f"(limit {MAX_JSON_BYTES // 1024**3} GB); split it or convert it to a BEIR folder"
            )
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; a JSON file must be UTF-8") from None
    return safejson.loads(text, where=str(path), whole_file=True)


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

"""Which files an ingest reads, and the chunk id prefix each one gets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from qadapter.errors import DataError
from qadapter.ingest.readers import reader_for, supported_suffixes

logger = logging.getLogger(__name__)

_SLUG = re.compile(r"[^a-z0-9]+")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _folder_files(path: Path) -> list[tuple[Path, str]]:
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path)):
        if reader_for(file) is None:
            logger.warning(
                "skipping %s: unsupported file type (supported: %s)", file, ", ".join(supported_suffixes())
            )
            continue
        found.append((file, file.relative_to(path).as_posix()))
    return found


def collect_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into ``(file, source name)`` pairs, in a stable order.

    A folder is searched recursively (hidden files and folders are skipped); files with an unsupported suffix are
    skipped with a warning. A file named directly must have a supported suffix. The source name is the path
    relative to the folder given (or the file name for a file given directly), with ``/`` separators.
    """
    paths = list(paths)
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(_folder_files(path))
        elif path.is_file():
            if reader_for(path) is None:
                raise DataError(
                    f"{path}: unsupported file type '{path.suffix or '(no suffix)'}'; "
                    f"supported: {', '.join(supported_suffixes())}"
                )
            found.append((path, path.name))
        else:
            raise DataError(f"{path}: no such file or folder")
    if not found:
        raise DataError(
            f"no files to ingest in {', '.join(str(p) for p in paths)}; supported: {', '.join(supported_suffixes())}"
        )
    return found


def id_prefix(source: str, used: set[str]) -> str:
    """``<file-stem>``, lower-cased and made unique: two files with the same stem get ``-2``, ``-3``..."""
    stem = _SLUG.sub("-", Path(source).stem.lower()).strip("-") or "doc"
    prefix, n = stem, 1
    while prefix in used:
        n += 1
        prefix = f"{stem}-{n}"
    used.add(prefix)
    return prefix

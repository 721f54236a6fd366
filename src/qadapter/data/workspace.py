"""Read and write a workspace: a BEIR folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Every reader names the file and line of the first problem it finds; every writer is atomic.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qadapter.data import safejson
from qadapter.data.atomic import atomic_open
from qadapter.data.ids import validate_id, validate_split_name
from qadapter.data.types import Document, Qrels, Query
from qadapter.errors import DataError

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_DIR = "qrels"


def iter_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL file; errors name ``file:line``."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        handle = path.open(encoding="utf-8-sig")  # a byte-order mark at the start is dropped, not an error
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    with handle:
        lineno = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError:
                raise DataError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            record = safejson.loads(line, where=f"{path}:{lineno}")
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def _require_str(path: Path, lineno: int, record: dict[str, Any], key: str, *, optional: bool = False) -> str:
    value = record.get(key, "" if optional else None)
    if value is None:
        raise DataError(f"{path}:{lineno}: missing field '{key}' (fields present: {sorted(record)})")
    if key == "_id":
        return validate_id(value, where=f"{path}:{lineno}", what="'_id'")
    if not isinstance(value, str):
        raise DataError(f"{path}:{lineno}: field '{key}' must be a string, got {type(value).__name__}")
    return value


def read_corpus(path: str | Path) -> dict[str, Document]:
    """Read ``corpus.jsonl`` (``_id``, ``text``, optional ``title`` and ``metadata``) into ``{id: Document}``."""
    path = Path(path)
    corpus: dict[str, Document] = {}
    for lineno, record in iter_jsonl(path):
        doc_id = _require_str(path, lineno, record, "_id")
        if doc_id in corpus:
            raise DataError(f"{path}:{lineno}: duplicate document id '{doc_id}'; ids must be unique")
        text = _require_str(path, lineno, record, "text")
        title = _require_str(path, lineno, record, "title", optional=True)
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DataError(f"{path}:{lineno}: field 'metadata' must be an object")
        corpus[doc_id] = Document(doc_id, text, title, metadata)
    if not corpus:
        raise DataError(f"{path}: the corpus is empty; it needs at least one document")
    return corpus


def read_queries(path: str | Path) -> dict[str, Query]:
    """Read ``queries.jsonl`` (``_id``, ``text``, optional ``metadata``) into ``{id: Query}``."""
    path = Path(path)
    queries: dict[str, Query] = {}
    for lineno, record in iter_jsonl(path):
        query_id = _require_str(path, lineno, record, "_id")
        if query_id in queries:
            raise DataError(f"{path}:{lineno}: duplicate query id '{query_id}'; ids must be unique")
        text = _require_str(path, lineno, record, "text")
        metadata = record.get("metadata") or {}
        queries[query_id] = Query(query_id, text, metadata if isinstance(metadata, dict) else {})
    return queries


def read_qrels(path: str | Path) -> Qrels:
    """Read a TREC/BEIR qrels TSV (header ``query-id corpus-id score``) into ``{query_id: {doc_id: score}}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    qrels: Qrels = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            _read_qrels_rows(path, csv.reader(handle, delimiter="\t"), qrels)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable TSV file ({exc})") from None
    return qrels


def _read_qrels_rows(path: Path, reader: Iterable[list[str]], qrels: Qrels) -> None:
    for lineno, row in enumerate(reader, start=1):
        if not row or not "".join(row).strip():
            continue
        if lineno == 1 and row[0].strip().lower() in {"query-id", "query_id", "qid"}:
            continue
        if len(row) < 3:
            raise DataError(
                f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), got {len(row)}"
            )
        where = f"{path}:{lineno}"
        query_id = validate_id(row[0].strip(), where=where, what="query-id")
        doc_id = validate_id(row[1].strip(), where=where, what="corpus-id")
        qrels.setdefault(query_id, {})[doc_id] = parse_score(row[2].strip(), where=where)


_WHOLE = re.compile(r"[+-]?\d{1,9}(\.0*)?")


def parse_score(text: str, *, where: str) -> int:
    """A qrels score: a whole number (``2`` or ``2.0``) of at most 9 digits; ``inf``, ``1e400``, ``nan``, ``0.5`` and
    5,000-digit numbers are refused with a DataError (``int(float("inf"))`` would otherwise crash)."""
    if not _WHOLE.fullmatch(text):
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise DataError(
            f"{where}: score must be a whole number (a relevance grade like 0, 1 or 2), got '{shown}'"
        )
    return int(float(text))


def write_corpus(path: str | Path, corpus: Iterable[Document]) -> None:
    with atomic_open(path) as handle:
        for doc in corpus:
            validate_id(doc.id, where=str(path), what="document id")
            record: dict[str, Any] = {"_id": doc.id, "title": doc.title, "text": doc.text}
            if doc.metadata:
                record["metadata"] = doc.metadata
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_queries(path: str | Path, queries: Iterable[Query]) -> None:
    with atomic_open(path) as handle:
        for query in queries:
            validate_id(query.id, where=str(path), what="query id")
            record: dict[str, Any] = {"_id": query.id, "text": query.text}
            if query.metadata:
                record["metadata"] = query.metadata
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> None:
    with atomic_open(path) as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, docs in qrels.items():
            validate_id(query_id, where=str(path), what="query id")
            for doc_id, score in docs.items():
                validate_id(doc_id, where=str(path), what="document id")
                handle.write(f"{query_id}\t{doc_id}\t{int(score)}\n")


class Workspace:
    """A BEIR folder that every qadapter command reads and writes.

    Layout::

        WS/corpus.jsonl          documents (chunks)
        WS/queries.jsonl         queries
        WS/qrels/<split>.tsv     relevance judgements per split (train, test, ...)
        WS/.qadapter/            embedding cache and run state (safe to delete)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # parsed files, keyed by (path, inode, mtime, size): stages of one job read each file once, and a file that
        # changed on disk is read again
        self._parsed: dict[Path, tuple[tuple[int, int, int], Any]] = {}

    def _read_once(self, path: Path, reader: Any) -> Any:
        try:
            stat = path.stat()
        except OSError:
            return reader(path)  # the reader names the missing file
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # atomic writes give a new inode
        cached = self._parsed.get(path)
        if cached is None or cached[0] != key:
            cached = (key, reader(path))
            self._parsed[path] = cached
        return dict(cached[1])  # a fresh mapping: callers may add to it without touching the cache

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # -- paths -----------------------------------------------------------------------------------------------
    @property
    def corpus_path(self) -> Path:
        return self.path / CORPUS_FILE

    @property
    def queries_path(self) -> Path:
        return self.path / QUERIES_FILE

    def qrels_path(self, split: str) -> Path:
        return self.path / QRELS_DIR / f"{split}.tsv"

    @property
    def state_dir(self) -> Path:
        """Where qadapter keeps caches and run state for this workspace."""
        return self.path / ".qadapter"

    # -- reading ----------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.corpus_path.is_file()

    def check(self) -> None:
        if not self.path.is_dir():
            raise DataError(
                f"{self.path}: workspace folder not found; create one with 'qadapter ingest' or 'qadapter import'"
            )
        if not self.corpus_path.is_file():
            raise DataError(
                f"{self.path}: no {CORPUS_FILE} in this folder; a workspace is a BEIR folder "
                "(corpus.jsonl, queries.jsonl, qrels/<split>.tsv)"
            )

    def corpus(self) -> dict[str, Document]:
        self.check()
        return self._read_once(self.corpus_path, read_corpus)  # type: ignore[no-any-return]

    def queries(self) -> dict[str, Query]:
        self.check()
        return self._read_once(self.queries_path, read_queries)  # type: ignore[no-any-return]

    def splits(self) -> list[str]:
        qrels_dir = self.path / QRELS_DIR
        return sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []

    def qrels(self, split: str) -> Qrels:
        path = self.qrels_path(split)
        if not path.is_file():
            available = ", ".join(self.splits()) or "none"
            raise DataError(f"{path}: no qrels for split '{split}' (available splits: {available})")
        return read_qrels(path)

    # -- writing ----------------------------------------------------------------------------------------------
    def write_corpus(self, corpus: Iterable[Document]) -> None:
        write_corpus(self.corpus_path, corpus)

    def write_queries(self, queries: Iterable[Query]) -> None:
        write_queries(self.queries_path, queries)

    def write_qrels(self, split: str, qrels: Mapping[str, Mapping[str, int]]) -> None:
        validate_split_name(split, where=str(self.path))
        write_qrels(self.qrels_path(split), qrels)

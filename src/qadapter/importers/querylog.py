"""A log of real user queries, one JSON object per line, with the chunk(s) each user found useful.

Accepted fields (per line)::

    {"query": "how do I reset my password?",     # required: the query text
     "doc_ids": ["faq-12", "faq-13"],            # the ids of useful chunks in the corpus, or ...
     "doc_texts": ["To reset your password ..."],# ... their texts (matched exactly after whitespace normalisation)
     "score": 2,                                 # optional: relevance grade, a whole number >= 0 (default 1)
     "id": "u42",                                # optional: query id (default log-<n>)
     "split": "train"}                           # optional: qrels split (default "log")

``doc_ids`` and ``doc_texts`` may each be a string or a list, and may be combined. Other fields (a timestamp, a
user id) are kept in the query's metadata (from its first line), which is tagged ``{"source": "log"}`` so logged
queries stay distinguishable from generated ones in the same workspace. Lines with the same query text
(after whitespace normalisation) become one query whose relevant chunks are the union, with the highest grade.
The documents are those of an existing corpus (the target workspace's, or ``--corpus``); an unknown id, an
unmatched text or a malformed line is an error naming ``file:line``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.data import Document, Qrels, Query, safejson
from qadapter.data.ids import validate_id, validate_split_name
from qadapter.data.workspace import iter_jsonl
from qadapter.errors import DataError
from qadapter.importers.base import ImportedData, Importer

FIELDS = ("query", "doc_ids", "doc_texts", "score", "id", "split")
#: The ``source`` tag in the metadata of every logged query, and the default qrels split they go to.
SOURCE = "log"
DEFAULT_SPLIT = "log"


def normalise(text: str) -> str:
    """Whitespace-insensitive form used to match logged chunk texts and to merge repeated queries."""
    return " ".join(text.split())


def detect(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() != ".jsonl":
        return False
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = safejson.loads(line, where=str(path))
                    return isinstance(record, dict) and "query" in record
    except (OSError, UnicodeDecodeError, DataError):
        return False
    return False


@dataclass(frozen=True)
class LogLine:
    """One checked line of the log: what was asked, which chunks answered it, how well, and where it goes."""

    where: str
    text: str
    doc_ids: list[str]
    score: int
    split: str
    query_id: str | None
    extra: dict[str, Any]


def _strings(where: str, record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise DataError(f"{where}: '{key}' must be a string or a list of strings")
    if key == "doc_ids":
        return [validate_id(v, where=where, what="'doc_ids' entry") for v in value]
    return [str(v) for v in value]


def _score(where: str, record: dict[str, Any]) -> int:
    score = record.get("score", 1)
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10**9:
        raise DataError(
            f"{where}: 'score' must be a whole number >= 0 (a relevance grade), got {str(score)[:20]!r}"
        )
    return score


def _extra_fields(where: str, record: dict[str, Any]) -> dict[str, Any]:
    """Fields other than :data:`FIELDS` (kept as metadata); near-misses of a known field are refused as typos."""
    extra = {k: v for k, v in record.items() if k not in FIELDS}
    typos = sorted(k for k in extra if k.lower().startswith(("doc", "query", "score")))
    if typos:
        raise DataError(f"{where}: unknown field(s) {typos}; valid fields: {', '.join(FIELDS)}")
    if "source" in extra:  # the source tag says where the query came from; keep the user's value beside it
        extra["log_source"] = extra.pop("source")
    return extra


class _TextIndex:
    """Chunk texts (whitespace-normalised) to their ids, built on first use."""

    def __init__(self, corpus: Mapping[str, Document]) -> None:
        self.corpus = corpus
        self._by_text: dict[str, list[str]] | None = None

    def ids(self, where: str, doc_text: str) -> list[str]:
        if self._by_text is None:
            self._by_text = {}
            for doc in self.corpus.values():
                self._by_text.setdefault(normalise(doc.text), []).append(doc.id)
        matches = self._by_text.get(normalise(doc_text))
        if not matches:
            shown = ascii(normalise(doc_text)[:60])[1:-1]
            raise DataError(
                f"{where}: doc_texts entry '{shown}...' matches no chunk in the corpus (exact text, whitespace ignored)"
            )
        return matches


def _relevant(where: str, record: dict[str, Any], index: _TextIndex) -> list[str]:
    """The corpus ids a line names, by id or by text."""
    doc_ids = _strings(where, record, "doc_ids")
    doc_texts = _strings(where, record, "doc_texts")
    if not doc_ids and not doc_texts:
        raise DataError(f"{where}: no 'doc_ids' or 'doc_texts'; say which chunk(s) answered the query")
    for doc_id in doc_ids:
        if doc_id not in index.corpus:
            raise DataError(f"{where}: unknown document id {doc_id!a} (not in the corpus)")
    for doc_text in doc_texts:
        doc_ids.extend(index.ids(where, doc_text))
    return doc_ids


def parse_line(where: str, record: dict[str, Any], index: _TextIndex) -> LogLine:
    extra = _extra_fields(where, record)
    text = record.get("query")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: 'query' must be a non-empty string")
    doc_ids = _relevant(where, record, index)
    score = _score(where, record)
    split = validate_split_name(record.get("split", DEFAULT_SPLIT), where=where)
    query_id = validate_id(record["id"], where=where, what="'id'") if "id" in record else None
    return LogLine(where, text, doc_ids, score, split, query_id, extra)


@dataclass
class _Collected:
    """Queries and qrels built line by line; a repeated query text merges into the first one.

    Queries without an ``id`` are keyed ``#<n>`` while reading and numbered ``log-<n>`` at the end, past every id the
    log gives itself, so an explicit ``"id": "log-1"`` on a later line never clashes with a made-up one.
    """

    queries: dict[str, Query] = field(default_factory=dict)
    qrels: dict[str, Qrels] = field(default_factory=dict)
    by_text: dict[str, str] = field(default_factory=dict)
    split_of: dict[str, str] = field(default_factory=dict)

    def query_for(self, line: LogLine) -> str:
        key = normalise(line.text)
        query_id = self.by_text.get(key)
        if query_id is not None:
            if self.split_of[query_id] != line.split:
                raise DataError(
                    f"{line.where}: the same query is in split '{self.split_of[query_id]}' on an earlier line "
                    f"and '{line.split}' here"
                )
            return query_id
        query_id = line.query_id or f"#{len(self.queries) + 1}"
        if query_id in self.queries:
            raise DataError(f"{line.where}: query id {query_id!a} is already used by a different query")
        self.queries[query_id] = Query(query_id, line.text, {"source": SOURCE, **line.extra})
        self.by_text[key] = query_id
        self.split_of[query_id] = line.split
        return query_id

    def add(self, line: LogLine) -> None:
        judged = self.qrels.setdefault(line.split, {}).setdefault(self.query_for(line), {})
        for doc_id in line.doc_ids:
            judged[doc_id] = max(line.score, judged.get(doc_id, 0))

    def finish(self) -> ImportedData:
        """Number the queries that had no id, and return everything in the order of the log."""
        final: dict[str, str] = {}
        taken = {qid for qid in self.queries if not qid.startswith("#")}
        n = 0
        for qid in self.queries:
            if qid.startswith("#"):
                n += 1
                while f"log-{n}" in taken:
                    n += 1
                final[qid] = f"log-{n}"
        queries = [Query(final.get(q.id, q.id), q.text, q.metadata) for q in self.queries.values()]
        qrels = {
            split: {final.get(qid, qid): judged for qid, judged in split_qrels.items()}
            for split, split_qrels in self.qrels.items()
        }
        return ImportedData(None, queries, qrels, set(final.values()))


def load(path: Path, corpus: Mapping[str, Document] | None = None) -> ImportedData:
    if corpus is None:
        raise DataError(
            f"{path}: a query log needs an existing corpus to match against; pass --corpus or import into a "
            "workspace that has one"
        )
    index = _TextIndex(corpus)
    collected = _Collected()
    for lineno, record in iter_jsonl(path):
        collected.add(parse_line(f"{path}:{lineno}", record, index))
    if not collected.queries:
        raise DataError(
            f'{path}: the query log is empty; expected one JSON object per line like {{"query": ..., "doc_ids": [...]}}'
        )
    return collected.finish()


IMPORTER = Importer(
    "querylog",
    "a JSONL log of real queries with the ids or texts of useful chunks",
    detect,
    load,
    needs_corpus=True,
)

"""A log of real user queries, one JSON object per line, with the chunk(s) each user found useful.

Accepted fields (per line)::

    {"query": "how do I reset my password?",     # required: the query text
     "doc_ids": ["faq-12", "faq-13"],            # the ids of useful chunks in the corpus, or ...
     "doc_texts": ["To reset your password ..."],# ... their texts (matched exactly after whitespace normalisation)
     "score": 2,                                 # optional: relevance grade, a whole number >= 0 (default 1)
     "id": "u42",                                # optional: query id (default log-<n>)
     "split": "train"}                           # optional: qrels split (default "all")

``doc_ids`` and ``doc_texts`` may each be a string or a list, and may be combined. Other fields (a timestamp, a
user id) are kept in the query's metadata (from its first line). Lines with the same query text
(after whitespace normalisation) become one query whose relevant chunks are the union, with the highest grade.
The documents are those of an existing corpus (the target workspace's, or ``--corpus``); an unknown id, an
unmatched text or a malformed line is an error naming ``file:line``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qadapter.data import Document, Qrels, Query
from qadapter.data.workspace import iter_jsonl
from qadapter.errors import DataError
from qadapter.importers.base import ImportedData, Importer

FIELDS = ("query", "doc_ids", "doc_texts", "score", "id", "split")


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
                    record = json.loads(line)
                    return isinstance(record, dict) and "query" in record
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def _strings(where: str, record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise DataError(f"{where}: '{key}' must be a string or a list of strings")
    return [str(v) for v in value]


def _score(where: str, record: dict[str, Any]) -> int:
    score = record.get("score", 1)
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or score < 0:
        raise DataError(f"{where}: 'score' must be a whole number >= 0 (a relevance grade), got {score!r}")
    return score


def load(path: Path, corpus: Mapping[str, Document] | None = None) -> ImportedData:
    if corpus is None:
        raise DataError(
            f"{path}: a query log needs an existing corpus to match against; pass --corpus or import into a workspace that has one"
        )
    by_text: dict[str, list[str]] = {}
    queries: dict[str, Query] = {}
    query_by_text: dict[str, str] = {}
    qrels: dict[str, Qrels] = {}
    split_of: dict[str, str] = {}
    lines = 0
    for lineno, record in iter_jsonl(path):
        where = f"{path}:{lineno}"
        extra = {k: v for k, v in record.items() if k not in FIELDS}
        typos = sorted(k for k in extra if k.lower().startswith(("doc", "query", "score")))
        if typos:
            raise DataError(f"{where}: unknown field(s) {typos}; valid fields: {', '.join(FIELDS)}")
        text = record.get("query")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: 'query' must be a non-empty string")
        doc_ids = _strings(where, record, "doc_ids")
        doc_texts = _strings(where, record, "doc_texts")
        if not doc_ids and not doc_texts:
            raise DataError(f"{where}: no 'doc_ids' or 'doc_texts'; say which chunk(s) answered the query")
        for doc_id in doc_ids:
            if doc_id not in corpus:
                raise DataError(f"{where}: unknown document id '{doc_id}' (not in the corpus)")
        if doc_texts and not by_text:
            for doc in corpus.values():
                by_text.setdefault(normalise(doc.text), []).append(doc.id)
        for doc_text in doc_texts:
            matches = by_text.get(normalise(doc_text))
            if not matches:
                shown = normalise(doc_text)[:60]
                raise DataError(
                    f"{where}: doc_texts entry '{shown}...' matches no chunk in the corpus (exact text, whitespace ignored)"
                )
            doc_ids.extend(matches)
        score = _score(where, record)
        split = record.get("split", "all")
        if not isinstance(split, str) or not split.strip() or "/" in split:
            raise DataError(f"{where}: 'split' must be a split name like 'train' or 'test', got {split!r}")
        key = normalise(text)
        query_id = query_by_text.get(key)
        if query_id is None:
            query_id = str(record.get("id", f"log-{len(queries) + 1}"))
            if query_id in queries:
                raise DataError(f"{where}: query id '{query_id}' is already used by a different query")
            queries[query_id] = Query(query_id, text, {"source": "query-log", **extra})
            query_by_text[key] = query_id
            split_of[query_id] = split
        elif split_of[query_id] != split:
            raise DataError(
                f"{where}: the same query is in split '{split_of[query_id]}' on an earlier line and '{split}' here"
            )
        judged = qrels.setdefault(split, {}).setdefault(query_id, {})
        for doc_id in doc_ids:
            judged[doc_id] = max(score, judged.get(doc_id, 0))
        lines += 1
    if not lines:
        raise DataError(
            f'{path}: the query log is empty; expected one JSON object per line like {{"query": ..., "doc_ids": [...]}}'
        )
    return ImportedData(None, list(queries.values()), qrels)


IMPORTER = Importer(
    "querylog",
    "a JSONL log of real queries with the ids or texts of useful chunks",
    detect,
    load,
    needs_corpus=True,
)

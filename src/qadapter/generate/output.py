"""Turn answers into workspace queries and qrels, merging with what is already there and never duplicating.

Query ids are ``gen-<doc_id>-<n>``. A question already in the workspace for the same document (same text, any
run) is not added again, so re-running a finished or resumed run changes nothing, and a second model adds only its
new questions, numbered after the existing ones. All files (queries and every qrels split) are written in full
before any of them replaces its old version, so a full disk or a crash while writing changes nothing.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.data.types import Qrels, Query
from qadapter.data.workspace import Workspace, write_qrels, write_queries

logger = logging.getLogger(__name__)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


@dataclass
class MergeResult:
    added: int = 0
    skipped_existing: int = 0
    removed_previous: int = 0
    splits: list[str] = field(default_factory=list)


def merge_queries(
    workspace: Workspace,
    groups: Mapping[str, list[str]],
    metadata: Mapping[str, Any],
    *,
    split: str,
    replace_run: str | None = None,
    test_fraction: float | None = None,
    seed: int = 0,
) -> MergeResult:
    """Append ``groups`` (``{doc_id: [question, ...]}``) to ``queries.jsonl`` and ``qrels/<split>.tsv``.

    ``metadata`` is stamped on every new query, plus its ``doc_id``. With ``replace_run``, queries an earlier
    collection of that run wrote for the documents in ``groups`` are removed first (used when filters changed).
    With ``test_fraction``, the split is also divided by document into ``<split>-train`` and ``<split>-test``, so test questions are never
    paraphrases of training ones.
    """
    result = MergeResult()
    queries: dict[str, Query] = workspace.queries() if workspace.queries_path.is_file() else {}
    qrels: Qrels = workspace.qrels(split) if workspace.qrels_path(split).is_file() else {}
    if replace_run is not None:
        result.removed_previous = _drop_run(queries, qrels, replace_run, groups)
    existing, next_n = _index_existing(queries)
    for doc_id, questions in groups.items():
        for text in questions:
            key = (doc_id, _norm(text))
            if key in existing:
                result.skipped_existing += 1
                qrels.setdefault(existing[key], {})[doc_id] = 1
                continue
            qid = _next_id(doc_id, next_n, queries)
            queries[qid] = Query(qid, text, {**metadata, "doc_id": doc_id})
            existing[key] = qid
            qrels[qid] = {doc_id: 1}
            result.added += 1
    splits = _with_test_split(qrels, split, test_fraction, seed)
    writes: list[tuple[Path, Callable[[Path], None]]] = [
        (workspace.queries_path, functools.partial(write_queries, queries=queries.values()))
    ]
    for name, judged in splits.items():
        writes.append((workspace.qrels_path(name), functools.partial(write_qrels, qrels=judged)))
    write_all_or_none(writes)
    result.splits = list(splits)
    return result


def _drop_run(queries: dict[str, Query], qrels: Qrels, run: str, groups: Mapping[str, list[str]]) -> int:
    """Remove the queries ``run`` wrote earlier for the documents in ``groups``; return how many."""
    stale = {
        qid
        for qid, q in queries.items()
        if q.metadata.get("run") == run and q.metadata.get("doc_id") in groups
    }
    for qid in stale:
        del queries[qid]
        qrels.pop(qid, None)
    return len(stale)


def _index_existing(queries: Mapping[str, Query]) -> tuple[dict[tuple[str, str], str], dict[str, int]]:
    """(document, normalised text) -> query id of every query tied to a document, and each document's next number."""
    existing: dict[tuple[str, str], str] = {}
    next_n: dict[str, int] = {}
    for qid, query in queries.items():
        doc_id = query.metadata.get("doc_id")
        if not isinstance(doc_id, str):
            continue
        existing.setdefault((doc_id, _norm(query.text)), qid)
        prefix = f"gen-{doc_id}-"
        if qid.startswith(prefix) and qid[len(prefix) :].isdigit():
            next_n[doc_id] = max(next_n.get(doc_id, 1), int(qid[len(prefix) :]) + 1)
    return existing, next_n


def _next_id(doc_id: str, next_n: dict[str, int], queries: Mapping[str, Query]) -> str:
    n = next_n.get(doc_id, 1)
    while f"gen-{doc_id}-{n}" in queries:
        n += 1
    next_n[doc_id] = n + 1
    return f"gen-{doc_id}-{n}"


def _with_test_split(qrels: Qrels, split: str, test_fraction: float | None, seed: int) -> dict[str, Qrels]:
    """``{split: qrels}``, plus ``<split>-train``/``<split>-test`` divided by document when ``test_fraction`` is set."""
    if test_fraction is None:
        return {split: qrels}
    from qadapter.data.splits import split_qrels

    train, test = split_qrels(qrels, by="document", test_fraction=test_fraction, seed=seed)
    return {split: qrels, f"{split}-train": train, f"{split}-test": test}


def write_all_or_none(writes: list[tuple[Path, Callable[[Path], None]]]) -> None:
    """Write every file to a staged copy next to it, then move them all into place.

    A failure while writing (a full disk) leaves every target as it was and removes the staged copies; only the
    renames, which need no space, come after the last write.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, write in writes:
            tmp = target.with_name(f".{target.name}.{os.getpid()}.staged")
            staged.append((tmp, target))
            write(tmp)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)

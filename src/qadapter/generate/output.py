"""Turn answers into workspace queries and qrels, merging with what is already there and never duplicating.

Query ids are ``gen-<doc_id>-<n>``. A question already in the workspace for the same document (same text, any
run) is not added again, so re-running a finished or resumed run changes nothing, and a second model adds only its
new questions, numbered after the existing ones. Files are replaced atomically at the end.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qadapter.data.types import Qrels, Query
from qadapter.data.workspace import Workspace
from qadapter.errors import QadapterError

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
    collection of that run wrote for the documents in ``groups`` are removed first (used when filters changed). With ``test_fraction``, the split
    is also divided by document into ``<split>-train`` and ``<split>-test``, so test questions are never
    paraphrases of training ones.
    """
    result = MergeResult()
    queries: dict[str, Query] = workspace.queries() if workspace.queries_path.is_file() else {}
    qrels: Qrels = workspace.qrels(split) if workspace.qrels_path(split).is_file() else {}
    if replace_run is not None:
        stale = {
            qid
            for qid, q in queries.items()
            if q.metadata.get("run") == replace_run and q.metadata.get("doc_id") in groups
        }
        for qid in stale:
            del queries[qid]
            qrels.pop(qid, None)
        result.removed_previous = len(stale)

    existing: dict[tuple[str, str], str] = {}
    next_n: dict[str, int] = {}
    for qid, query in queries.items():
        doc_id = query.metadata.get("doc_id")
        if isinstance(doc_id, str):
            existing.setdefault((doc_id, _norm(query.text)), qid)
            prefix = f"gen-{doc_id}-"
            if qid.startswith(prefix) and qid[len(prefix) :].isdigit():
                next_n[doc_id] = max(next_n.get(doc_id, 1), int(qid[len(prefix) :]) + 1)

    for doc_id, questions in groups.items():
        for text in questions:
            key = (doc_id, _norm(text))
            if key in existing:
                result.skipped_existing += 1
                qrels.setdefault(existing[key], {})[doc_id] = 1
                continue
            n = next_n.get(doc_id, 1)
            while f"gen-{doc_id}-{n}" in queries:
                n += 1
            qid = f"gen-{doc_id}-{n}"
            next_n[doc_id] = n + 1
            queries[qid] = Query(qid, text, {**metadata, "doc_id": doc_id})
            existing[key] = qid
            qrels[qid] = {doc_id: 1}
            result.added += 1

    workspace.write_queries(queries.values())
    workspace.write_qrels(split, qrels)
    result.splits.append(split)
    if test_fraction is not None:
        try:
            from qadapter.data.splits import split_qrels
        except ImportError as exc:  # pragma: no cover - depends on the tree this ships in
            raise QadapterError("splitting needs qadapter.data.splits; run 'qadapter split' instead") from exc
        train, test = split_qrels(qrels, by="document", test_fraction=test_fraction, seed=seed)
        workspace.write_qrels(f"{split}-train", train)
        workspace.write_qrels(f"{split}-test", test)
        result.splits += [f"{split}-train", f"{split}-test"]
    return result

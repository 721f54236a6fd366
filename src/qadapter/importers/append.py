"""Add imported queries to a workspace that already has some: query sources add up instead of replacing each other.

A query log imported into a workspace that already holds generated queries keeps them: its queries are appended
to ``queries.jsonl`` (tagged ``{"source": "log"}``) and its judgements go to their own qrels split (``log``), so
``qadapter split WS --from log`` can hold out real queries while training uses generated and real ones.

Id clashes are resolved without losing anything: a logged query whose text is already in the workspace keeps the
existing id; an id the importer numbered itself (``log-3``) is renumbered past the ids in use; an id the source
gave that names a different query is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qadapter.data import Query, Workspace
from qadapter.errors import ArtifactError, DataError
from qadapter.importers.base import ImportedData
from qadapter.importers.querylog import normalise

logger = logging.getLogger(__name__)


def _check_splits(ws: Workspace, data: ImportedData, overwrite: bool) -> None:
    """A split that exists already is only replaced with ``--overwrite``; splits made from it are then stale."""
    clashes = [split for split in data.qrels if ws.qrels_path(split).exists()]
    if clashes and not overwrite:
        raise ArtifactError(
            f"{ws.qrels_path(clashes[0])} already exists (from an earlier import); pass --overwrite to replace "
            "that split, or give the new queries another split (the 'split' field of the log)"
        )
    for split in clashes:
        derived = [s for s in ws.splits() if s.startswith(f"{split}-")]
        if derived:
            logger.warning(
                "replacing qrels/%s.tsv; splits made from it (%s) are now out of date: re-run "
                "'qadapter split %s --from %s --overwrite'",
                split,
                ", ".join(derived),
                ws.path,
                split,
            )


def _free_id(taken: set[str], stem: str = "log") -> str:
    n = len(taken) + 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def resolve_ids(
    existing: dict[str, Query], data: ImportedData, *, where: Path
) -> tuple[list[Query], dict[str, str]]:
    """The queries to append and the id each imported query ends up with (``{imported id: workspace id}``)."""
    by_text = {normalise(q.text): qid for qid, q in existing.items()}
    taken = set(existing)
    added: list[Query] = []
    final: dict[str, str] = {}
    for query in data.queries:
        same_text = by_text.get(normalise(query.text))
        if same_text is not None:
            final[query.id] = (
                same_text  # the workspace has this query already (a re-import, or a generated twin)
            )
            continue
        new_id = query.id
        if new_id in taken:
            if query.id not in data.numbered:
                raise DataError(
                    f"{where}: query id {query.id!a} is already used by a different query "
                    f"({existing[query.id].text[:40]!a}); give the logged query another 'id', or leave 'id' out "
                    "to have one assigned"
                )
            new_id = _free_id(taken)
        taken.add(new_id)
        final[query.id] = new_id
        added.append(Query(new_id, query.text, query.metadata))
    return added, final


def append_queries(ws: Workspace, data: ImportedData, *, overwrite: bool) -> None:
    """Append ``data``'s queries to ``ws`` and write each of its qrels splits (see the module docstring)."""
    _check_splits(ws, data, overwrite)
    existing = ws.queries() if ws.queries_path.is_file() else {}
    added, final = resolve_ids(existing, data, where=ws.queries_path)
    ws.write_queries([*existing.values(), *added])  # first: qrels must never name a query that is not there
    for split, qrels in data.qrels.items():
        ws.write_qrels(split, {final[qid]: judged for qid, judged in qrels.items()})
    logger.info(
        "%s: appended %d queries (%d already there) to %d existing; wrote split(s) %s",
        ws.path,
        len(added),
        len(data.queries) - len(added),
        len(existing),
        ", ".join(sorted(data.qrels)),
    )

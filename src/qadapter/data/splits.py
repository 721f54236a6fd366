"""Deterministic train/test splits of qrels, by query or by document.

- ``by="query"``: a fraction of the queries is held out. Test queries ask about the same documents as training
  queries (the notebook's protocol), which measures how well the adapter fits this corpus.
- ``by="document"``: a fraction of the *documents* is held out and every query judged relevant to one of them goes
  to test. No training query points at a test document, which measures what users care about after training:
  does retrieval still work (or at least not get worse) for documents added later?

Order is decided by a keyed hash of ``(seed, id)`` rather than a random generator, so the same ids and seed give the
same split on every platform and library version, and adding data moves few existing ids across the boundary.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Literal

from qadapter.data.atomic import atomic_open
from qadapter.data.types import Qrels
from qadapter.data.workspace import Workspace
from qadapter.errors import ArtifactError, DataError, QadapterError

logger = logging.getLogger(__name__)

SplitBy = Literal["query", "document"]
SPLIT_BY: tuple[str, ...] = ("query", "document")


def _order(ids: set[str], seed: int) -> list[str]:
    """``ids`` in a pseudo-random order fixed by ``seed`` (sorted by a hash of the seed and the id)."""
    return sorted(ids, key=lambda i: (hashlib.sha256(f"{seed}\x00{i}".encode()).digest(), i))


def _n_test(n: int, test_fraction: float, what: str) -> int:
    if n < 2:
        raise DataError(f"cannot split {n} {what}(s) into train and test; at least 2 are needed")
    return min(n - 1, max(1, round(n * test_fraction)))


def split_qrels(
    qrels: Qrels, *, by: SplitBy = "query", test_fraction: float = 0.2, seed: int = 0
) -> tuple[Qrels, Qrels]:
    """Split ``qrels`` into ``(train, test)``; the caller's dict is not modified.

    With ``by="document"``, ``test_fraction`` is the fraction of documents (those with a relevant judgement) held
    out; a query relevant to any held-out document goes to test, so the test share of queries can differ from it.
    Queries without a relevant document stay in train. Both sides always get at least one query.
    """
    if by not in SPLIT_BY:
        raise QadapterError(f"unknown split kind '{by}'; choose one of: {', '.join(SPLIT_BY)}")
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, int | float)
        or not 0 < test_fraction < 1
    ):
        raise QadapterError(f"test fraction must be between 0 and 1 (exclusive), got {test_fraction!r}")
    if not qrels:
        raise DataError("the qrels are empty; there is nothing to split")

    if by == "query":
        order = _order(set(qrels), seed)
        test_ids = set(order[: _n_test(len(order), test_fraction, "query")])
    else:
        docs = {doc for judged in qrels.values() for doc, score in judged.items() if score > 0}
        order = _order(docs, seed)
        held_out = set(order[: _n_test(len(order), test_fraction, "relevant document")])
        test_ids = {
            q for q, judged in qrels.items() if any(s > 0 and d in held_out for d, s in judged.items())
        }
        if len(test_ids) == len(qrels):
            raise DataError(
                "every query is relevant to a held-out document, so nothing is left to train on; "
                "lower the test fraction or split by query"
            )
    train = {q: dict(judged) for q, judged in qrels.items() if q not in test_ids}
    test = {q: dict(judged) for q, judged in qrels.items() if q in test_ids}
    return train, test


def default_names(source_split: str) -> tuple[str, str]:
    """Names of the two halves of ``source_split``: ``train``/``test`` for ``all`` (everything the workspace was
    imported with), else ``<source>-train``/``<source>-test`` (``log`` -> ``log-train``, as ``generate`` names
    ``generated-train``), so the names say which queries they hold."""
    if source_split == "all":
        return ("train", "test")
    return (f"{source_split}-train", f"{source_split}-test")


def make_splits(
    ws: Workspace,
    source_split: str = "all",
    *,
    by: SplitBy = "query",
    test_fraction: float = 0.2,
    seed: int = 0,
    names: tuple[str, str] | None = None,
    overwrite: bool = False,
) -> dict[str, Qrels]:
    """Split the workspace's ``qrels/<source_split>.tsv`` and write ``qrels/<train>.tsv`` and ``qrels/<test>.tsv``.

    ``names`` defaults to :func:`default_names`. Existing split files are only replaced with ``overwrite=True``. The settings are saved in
    ``qrels/<train>+<test>.json`` so the split can be reproduced. Returns ``{name: qrels}``.
    """
    if names is None:
        names = default_names(source_split)
    if len(names) != 2 or len(set(names)) != 2 or not all(n and "/" not in n for n in names):
        raise QadapterError(f"names must be two different split names like ('train', 'test'), got {names!r}")
    if source_split in names:
        raise QadapterError(
            f"the split being divided ('{source_split}') cannot also be an output name {names}; pick other names"
        )
    qrels = ws.qrels(source_split)
    existing = [ws.qrels_path(n) for n in names if ws.qrels_path(n).exists()]
    if existing and not overwrite:
        raise ArtifactError(f"{existing[0]} already exists; pass --overwrite to replace it")
    train, test = split_qrels(qrels, by=by, test_fraction=test_fraction, seed=seed)
    ws.write_qrels(names[0], train)
    ws.write_qrels(names[1], test)
    config = {
        "source_split": source_split,
        "by": by,
        "test_fraction": test_fraction,
        "seed": seed,
        "queries": {names[0]: len(train), names[1]: len(test)},
    }
    with atomic_open(ws.qrels_path(names[0]).with_name(f"{names[0]}+{names[1]}.json")) as handle:
        json.dump(config, handle, indent=2)
        handle.write("\n")
    logger.info("split %s by %s: %d train, %d test queries", source_split, by, len(train), len(test))
    return {names[0]: train, names[1]: test}

"""The one list of import formats: the CLI's ``--format`` choices, auto-detection and error messages read it.

Each format is one module with an :class:`~qadapter.importers.base.Importer`; adding a format is that module plus
one line in :data:`BUILTIN`.
"""

from __future__ import annotations

from pathlib import Path

from qadapter.errors import DataError, QadapterError
from qadapter.importers import beir, llamaindex, querylog, seed_json
from qadapter.importers.base import Importer

#: name -> importer; ``format="auto"`` tries them in this order.
IMPORTERS: dict[str, Importer] = {}
#: The value of ``format`` (and ``--format``) that asks every importer's ``detect`` in turn.
AUTO = "auto"
BUILTIN = (beir.IMPORTER, seed_json.IMPORTER, llamaindex.IMPORTER, querylog.IMPORTER)


def register_importer(importer: Importer) -> None:
    """Add a format; its ``detect`` joins auto-detection and its name becomes a valid ``format``."""
    IMPORTERS[importer.name] = importer


for _importer in BUILTIN:
    register_importer(_importer)


def format_choices() -> list[str]:
    """Every valid ``format``: ``auto`` first, then the registered formats in detection order."""
    return [AUTO, *IMPORTERS]


def get_importer(name: str) -> Importer:
    """The importer called ``name``, or a one-line error listing the valid ones."""
    if name not in IMPORTERS:
        raise QadapterError(
            f"unknown import format '{name}'; choose one of: {', '.join(format_choices())} (--format)"
        )
    return IMPORTERS[name]


def detect_format(source: str | Path) -> str:
    """The name of the format of ``source``, or a DataError listing the formats that were tried."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    for name, importer in IMPORTERS.items():
        if importer.detect(path):
            return name
    raise DataError(
        f"{path}: cannot tell its format; pass --format with one of: {', '.join(IMPORTERS)} "
        "(a BEIR folder has corpus.jsonl; the notebook JSON is a list of {chunk_index, input_chunk, questions}; "
        "LlamaIndex JSON has queries, corpus and relevant_docs; a query log is a .jsonl file with a 'query' field)"
    )

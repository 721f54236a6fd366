"""Import existing question/chunk data into a workspace: a BEIR folder, the notebook's JSON, LlamaIndex's
``EmbeddingQAFinetuneDataset`` JSON, or a JSONL log of real user queries.

Each format is one module with an :class:`Importer` (a cheap ``detect`` and a ``load``) in the registry below;
:func:`import_data` picks one (``format="auto"`` asks each ``detect`` in turn), loads everything into memory,
validates it, and only then writes, so a bad source never leaves a half-written workspace.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from qadapter.data import Document, Workspace, read_corpus
from qadapter.data.atomic import atomic_dir, atomic_open
from qadapter.errors import ArtifactError, DataError, QadapterError
from qadapter.importers import beir, llamaindex, querylog, seed_json
from qadapter.importers.base import ImportedData, Importer
from qadapter.version import __version__

logger = logging.getLogger(__name__)

#: Written next to the imported data: where it came from and in which format.
MANIFEST_FILE = "import.json"

#: name -> importer; ``format="auto"`` tries them in this order.
IMPORTERS: dict[str, Importer] = {}


def register_importer(importer: Importer) -> None:
    """Add a format; its ``detect`` joins auto-detection and its name becomes a valid ``format``."""
    IMPORTERS[importer.name] = importer


for _module in (beir, seed_json, llamaindex, querylog):
    register_importer(_module.IMPORTER)


def _formats() -> str:
    return ", ".join(IMPORTERS)


def detect_format(source: str | Path) -> str:
    """The name of the format of ``source``, or a DataError listing the formats that were tried."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    for name, importer in IMPORTERS.items():
        if importer.detect(path):
            return name
    raise DataError(
        f"{path}: cannot tell its format; pass --format with one of: {_formats()} "
        "(a BEIR folder has corpus.jsonl; the notebook JSON is a list of {chunk_index, input_chunk, questions}; "
        "LlamaIndex JSON has queries, corpus and relevant_docs; a query log is a .jsonl file with a 'query' field)"
    )


def _load_corpus(path: Path) -> dict[str, Document]:
    """``--corpus`` may name a workspace folder or a corpus.jsonl file."""
    return Workspace(path).corpus() if path.is_dir() else read_corpus(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _write_in_place(ws: Workspace, data: ImportedData, overwrite: bool) -> None:
    """Add queries and qrels to a workspace that already has the corpus (a query log into an ingested workspace)."""
    existing = [p for p in [ws.queries_path, *(ws.qrels_path(s) for s in ws.splits())] if p.exists()]
    if existing and not overwrite:
        raise ArtifactError(
            f"{ws.path} already has queries or qrels ({existing[0].name}); pass overwrite=True (--overwrite) to "
            "replace them, or import into a new workspace with --corpus"
        )
    ws.write_queries(data.queries)
    for split, qrels in data.qrels.items():
        ws.write_qrels(split, qrels)
    for old in existing:  # qrels of the replaced queries would point at queries that no longer exist
        if old.parent.name == "qrels" and old.stem not in data.qrels:
            logger.warning("removing %s: its queries were replaced", old)
            old.unlink()


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    with atomic_open(folder / MANIFEST_FILE) as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")


def import_data(
    source: str | Path,
    output: str | Path,
    *,
    format: str = "auto",
    overwrite: bool = False,
    corpus: str | Path | None = None,
) -> Workspace:
    """Import ``source`` into the workspace ``output`` and return it.

    Splits already in the source (a BEIR folder's qrels files) are kept; other formats write split ``all``, which
    :func:`qadapter.data.splits.make_splits` divides into train and test. A query log is matched against an existing
    corpus: ``corpus`` (a workspace folder or corpus.jsonl), or else the corpus already in ``output``, in which case
    its queries and qrels are added to that workspace in place.
    """
    source = Path(source)
    output = Path(output)
    if format == "auto":
        format = detect_format(source)
    if format not in IMPORTERS:
        raise QadapterError(f"unknown import format '{format}'; choose one of: auto, {_formats()}")
    importer = IMPORTERS[format]

    in_place = False
    docs: dict[str, Document] | None = None
    if importer.needs_corpus:
        target = Workspace(output)
        if corpus is None:
            if not target.corpus_path.is_file():
                raise DataError(
                    f"{source}: a query log needs a corpus to match its chunks against; pass --corpus "
                    f"(a workspace or corpus.jsonl), or import into a workspace that has one ({output} has none)"
                )
            corpus = target.corpus_path
        corpus = Path(corpus)
        docs = _load_corpus(corpus)
        corpus_file = corpus / "corpus.jsonl" if corpus.is_dir() else corpus
        in_place = _same_file(corpus_file, target.corpus_path)
    if not in_place and output.exists() and not overwrite:
        raise ArtifactError(
            f"{output} already exists; choose another output path or pass overwrite=True (--overwrite)"
        )

    data = importer.load(source, docs)
    if data.corpus is None:
        data.corpus = list(docs.values()) if docs is not None else []
    manifest: dict[str, Any] = {
        "format": "qadapter-import",
        "format_version": 1,
        "qadapter_version": __version__,
        "source": str(source),
        "source_format": format,
        "documents": len(data.corpus),
        "queries": len(data.queries),
        "qrels": {split: sum(len(d) for d in q.values()) for split, q in data.qrels.items()},
    }
    try:
        if in_place:
            _write_in_place(Workspace(output), data, overwrite)
            _write_manifest(output, manifest)
        else:
            with atomic_dir(output, overwrite=overwrite) as tmp:
                ws = Workspace(tmp)
                ws.write_corpus(data.corpus)
                ws.write_queries(data.queries)
                for split, qrels in data.qrels.items():
                    ws.write_qrels(split, qrels)
                _write_manifest(tmp, manifest)
    except OSError as exc:
        raise QadapterError(f"{output}: cannot write the workspace ({exc.strerror or exc})") from None
    logger.info(
        "imported %s (%s): %d documents, %d queries, splits %s -> %s",
        source,
        format,
        len(data.corpus),
        len(data.queries),
        sorted(data.qrels),
        output,
    )
    return Workspace(output)


__all__ = ["IMPORTERS", "ImportedData", "Importer", "detect_format", "import_data", "register_importer"]

"""``import_data``: load a source with its importer, validate everything in memory, then write the workspace.

A new workspace is written atomically (it appears complete or not at all). A query log imported into a workspace
that has the corpus already is appended to it (see :mod:`qadapter.importers.append`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from qadapter.data import Document, Workspace, read_corpus
from qadapter.data.atomic import atomic_dir, atomic_open
from qadapter.errors import ArtifactError, DataError, QadapterError
from qadapter.importers.append import append_queries
from qadapter.importers.base import ImportedData, Importer
from qadapter.importers.registry import AUTO, detect_format, get_importer
from qadapter.version import __version__

logger = logging.getLogger(__name__)

#: Written next to the imported data: where it came from and in which format (earlier imports under ``earlier``).
MANIFEST_FILE = "import.json"


def _load_corpus(path: Path) -> dict[str, Document]:
    """``--corpus`` may name a workspace folder or a corpus.jsonl file."""
    return Workspace(path).corpus() if path.is_dir() else read_corpus(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _corpus_for(
    importer: Importer, source: Path, output: Path, corpus: str | Path | None
) -> tuple[dict[str, Document] | None, bool]:
    """For importers that match against an existing corpus: ``(documents, whether output is that workspace)``."""
    if not importer.needs_corpus:
        return None, False
    target = Workspace(output)
    if corpus is None:
        if not target.corpus_path.is_file():
            raise DataError(
                f"{source}: a query log needs a corpus to match its chunks against; pass --corpus "
                f"(a workspace or corpus.jsonl), or import into a workspace that has one ({output} has none)"
            )
        corpus = target.corpus_path
    corpus = Path(corpus)
    corpus_file = corpus / "corpus.jsonl" if corpus.is_dir() else corpus
    return _load_corpus(corpus), _same_file(corpus_file, target.corpus_path)


def _manifest(source: Path, format: str, data: ImportedData, earlier: Path | None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": "qadapter-import",
        "format_version": 1,
        "qadapter_version": __version__,
        "source": str(source),
        "source_format": format,
        "documents": len(data.corpus or []),
        "queries": len(data.queries),
        "qrels": {split: sum(len(d) for d in q.values()) for split, q in data.qrels.items()},
    }
    if earlier is not None and earlier.is_file():
        try:
            previous = json.loads(earlier.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if isinstance(previous, dict):
            history = previous.pop("earlier", [])
            manifest["earlier"] = [*(history if isinstance(history, list) else []), previous]
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    with atomic_open(folder / MANIFEST_FILE) as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")


def _write_new(output: Path, data: ImportedData, manifest: dict[str, Any], overwrite: bool) -> None:
    with atomic_dir(output, overwrite=overwrite) as tmp:
        ws = Workspace(tmp)
        ws.write_corpus(data.corpus or [])
        ws.write_queries(data.queries)
        for split, qrels in data.qrels.items():
            ws.write_qrels(split, qrels)
        _write_manifest(tmp, manifest)


def import_data(
    source: str | Path,
    output: str | Path,
    *,
    format: str = AUTO,
    overwrite: bool = False,
    corpus: str | Path | None = None,
) -> Workspace:
    """Import ``source`` into the workspace ``output`` and return it.

    Splits already in the source (a BEIR folder's qrels files) are kept; the notebook and LlamaIndex JSON write
    split ``all`` and a query log split ``log``, which :func:`qadapter.data.splits.make_splits` divides into train
    and test. A query log is matched against an existing corpus: ``corpus`` (a workspace folder or corpus.jsonl),
    or else the corpus already in ``output``, in which case its queries are appended to that workspace.
    """
    source = Path(source)
    output = Path(output)
    importer = get_importer(detect_format(source) if format == AUTO else format)
    docs, in_place = _corpus_for(importer, source, output, corpus)
    if not in_place and output.exists() and not overwrite:
        raise ArtifactError(f"{output} already exists; choose another output path or pass --overwrite")

    data = importer.load(source, docs)
    if data.corpus is None:
        data.corpus = list(docs.values()) if docs is not None else []
    manifest = _manifest(source, importer.name, data, output / MANIFEST_FILE if in_place else None)
    try:
        if in_place:
            append_queries(Workspace(output), data, overwrite=overwrite)
            _write_manifest(output, manifest)
        else:
            _write_new(output, data, manifest, overwrite)
    except OSError as exc:
        raise QadapterError(f"{output}: cannot write the workspace ({exc.strerror or exc})") from None
    logger.info(
        "imported %s (%s): %d documents, %d queries, splits %s -> %s",
        source,
        importer.name,
        len(data.corpus),
        len(data.queries),
        sorted(data.qrels),
        output,
    )
    return Workspace(output)

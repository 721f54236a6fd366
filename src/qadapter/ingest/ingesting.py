"""``ingest``: read files, chunk them, and write the chunks as a new workspace corpus (atomically).

Each chunk is a :class:`~qadapter.data.Document` with a deterministic id (``<file-stem>-<n>``) and metadata
``{"source": relative path, "page": first page (PDF only), "chunk": n}``. The workspace appears complete or not at
all, and an existing one is only replaced with ``overwrite=True``. ``ingest.json`` records the chunking settings and,
per file, its chunk count and the text encoding that was assumed.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.core.progress import progress as progress_bar
from qadapter.data import Document, Workspace, write_corpus
from qadapter.data.atomic import atomic_dir, atomic_open
from qadapter.data.ids import validate_id
from qadapter.errors import ArtifactError, DataError, QadapterError
from qadapter.ingest.chunking import Chunker, Unit
from qadapter.ingest.files import collect_files, id_prefix
from qadapter.ingest.readers import Section, check_encoding, reader_for
from qadapter.version import __version__

logger = logging.getLogger(__name__)

#: Written next to the corpus so the chunking can be repeated and compared.
MANIFEST_FILE = "ingest.json"


def chunk_sections(
    sections: Sequence[Section], chunker: Chunker, *, markdown: bool = False
) -> list[tuple[str, dict]]:
    """Chunk a file's sections as one text, so chunks may span page breaks; each chunk keeps the metadata of the
    section it starts in, plus ``page_end`` when it runs onto a later page."""
    starts, parts, offset = [], [], 0
    for section in sections:
        starts.append(offset)
        parts.append(section.text)
        offset += len(section.text) + 2
    text = "\n\n".join(parts)
    chunks = []
    for start, chunk in chunker.split(text, markdown=markdown):
        first = bisect.bisect_right(starts, start) - 1
        last = bisect.bisect_right(starts, start + len(chunk) - 1) - 1
        metadata = dict(sections[first].metadata)
        end_page = sections[last].metadata.get("page")
        if "page" in metadata and end_page is not None and end_page != metadata["page"]:
            metadata["page_end"] = end_page
        chunks.append((chunk, metadata))
    return chunks


def _read_file(
    path: Path, source: str, chunker: Chunker, encoding: str | None, used: set[str]
) -> tuple[list[Document], dict[str, Any]]:
    """The chunks of one file as documents, and its entry in the manifest."""
    reader = reader_for(path)
    if reader is None:  # pragma: no cover - collect_files only returns supported files
        raise DataError(f"{path}: unsupported file type")
    content = reader.read(path, encoding)
    chunks = chunk_sections(content.sections, chunker, markdown=reader.markdown)
    prefix = id_prefix(source, used)
    documents = []
    for n, (text, metadata) in enumerate(chunks):
        doc_id = validate_id(f"{prefix}-{n}", where=str(path), what="chunk id")
        documents.append(Document(doc_id, text, metadata={"source": source, **metadata, "chunk": n}))
    entry: dict[str, Any] = {"source": source, "chunks": len(chunks)}
    if content.encoding is not None:
        entry["encoding"] = content.encoding
    logger.info("%s: %d chunks", source, len(chunks))
    return documents, entry


def _write(output: Path, documents: list[Document], manifest: dict[str, Any], overwrite: bool) -> None:
    try:
        with atomic_dir(output, overwrite=overwrite) as tmp:
            write_corpus(tmp / "corpus.jsonl", documents)
            with atomic_open(tmp / MANIFEST_FILE) as handle:
                json.dump(manifest, handle, indent=2)
                handle.write("\n")
    except OSError as exc:
        raise QadapterError(f"{output}: cannot write the workspace ({exc.strerror or exc})") from None


def ingest(
    paths: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    chunk_size: int | None = None,
    overlap: int | None = None,
    unit: Unit = "tokens",
    model: str = DEFAULT_MODEL,
    overwrite: bool = False,
    progress: bool = False,
    skip_bad: bool = False,
    encoding: str | None = None,
) -> Workspace:
    """Chunk files and folders into a new workspace at ``output`` and return it.

    ``chunk_size`` counts tokens of ``model``'s tokenizer (default: everything the model reads, e.g. 254 tokens
    for all-MiniLM-L6-v2) or characters with ``unit="chars"`` (the notebook's setup is ``chunk_size=800,
    overlap=400, unit="chars"``). ``overlap`` defaults to an eighth of the chunk size. Text files are read as
    ``encoding`` when given, else UTF-8, else the detected encoding (recorded per file in ``ingest.json``). A file
    that cannot be read (empty, corrupt, a PDF without a text layer) raises :class:`DataError` naming it, unless
    ``skip_bad`` is set, in which case it is skipped with a warning.
    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise ArtifactError(f"{output} already exists; choose another output path or pass --overwrite")
    encoding = check_encoding(encoding)
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    files = [(f, s) for f, s in collect_files(paths) if not f.resolve().is_relative_to(output.resolve())]
    if not files:
        raise DataError(f"no files to ingest outside the output folder {output}")
    chunker = Chunker(chunk_size, overlap, unit=unit, model=model)
    started = time.perf_counter()

    documents: list[Document] = []
    sources: list[dict[str, Any]] = []
    used: set[str] = set()
    with progress_bar(len(files), "ingest", unit="file", enabled=progress) as bar:
        for path, source in files:
            try:
                docs, entry = _read_file(path, source, chunker, encoding, used)
            except DataError as exc:
                if not skip_bad:
                    raise
                logger.warning("skipping %s", exc)
                docs, entry = [], {"source": source, "skipped": str(exc)}
            documents.extend(docs)
            sources.append(entry)
            bar.update()
    if not documents:
        raise DataError(f"no text found in any of the {len(files)} file(s) given; nothing to ingest")

    manifest = {
        "format": "qadapter-ingest",
        "format_version": 1,
        "qadapter_version": __version__,
        "chunking": chunker.config(),
        "documents": len(documents),
        "sources": sources,
    }
    _write(output, documents, manifest, overwrite)
    logger.info(
        "ingested %d files into %d chunks in %.1fs -> %s",
        len(files),
        len(documents),
        time.perf_counter() - started,
        output,
    )
    return Workspace(output)

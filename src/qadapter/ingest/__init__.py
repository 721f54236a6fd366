"""Ingest: PDF, Markdown, plain-text and HTML files (or folders of them) become the chunks of a workspace corpus.

Each chunk is a :class:`~qadapter.data.Document` with a deterministic id (``<file-stem>-<n>``) and metadata
``{"source": relative path, "page": first page (PDF only), "chunk": n}``. The workspace is written atomically:
it appears complete or not at all, and an existing one is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.data import Document, Workspace, write_corpus
from qadapter.data.atomic import atomic_dir, atomic_open
from qadapter.errors import ArtifactError, DataError, QadapterError
from qadapter.ingest.chunking import Chunker, Unit
from qadapter.ingest.readers import Reader, Section, reader_for, register_reader, supported_suffixes
from qadapter.version import __version__

logger = logging.getLogger(__name__)

#: Written next to the corpus so the chunking can be repeated and compared.
MANIFEST_FILE = "ingest.json"

__all__ = ["Chunker", "Reader", "Section", "collect_files", "ingest", "register_reader", "supported_suffixes"]


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def collect_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into ``(file, source name)`` pairs, in a stable order.

    A folder is searched recursively (hidden files and folders are skipped); files with an unsupported suffix are
    skipped with a warning. A file named directly must have a supported suffix. The source name is the path
    relative to the folder given (or the file name for a file given directly), with ``/`` separators.
    """
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
            for file in files:
                if reader_for(file) is None:
                    logger.warning(
                        "skipping %s: unsupported file type (supported: %s)",
                        file,
                        ", ".join(supported_suffixes()),
                    )
                    continue
                found.append((file, file.relative_to(path).as_posix()))
        elif path.is_file():
            if reader_for(path) is None:
                raise DataError(
                    f"{path}: unsupported file type '{path.suffix or '(no suffix)'}'; "
                    f"supported: {', '.join(supported_suffixes())}"
                )
            found.append((path, path.name))
        else:
            raise DataError(f"{path}: no such file or folder")
    if not found:
        raise DataError(
            f"no files to ingest in {', '.join(str(p) for p in paths)}; supported: {', '.join(supported_suffixes())}"
        )
    return found


_SLUG = re.compile(r"[^a-z0-9]+")


def _id_prefix(source: str, used: set[str]) -> str:
    """``<file-stem>``, lower-cased and made unique: two files with the same stem get ``-2``, ``-3``..."""
    stem = _SLUG.sub("-", Path(source).stem.lower()).strip("-") or "doc"
    prefix, n = stem, 1
    while prefix in used:
        n += 1
        prefix = f"{stem}-{n}"
    used.add(prefix)
    return prefix


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
) -> Workspace:
    """Chunk files and folders into a new workspace at ``output`` and return it.

    ``chunk_size`` counts tokens of ``model``'s tokenizer (default: everything the model reads, e.g. 254 tokens
    for all-MiniLM-L6-v2) or characters with ``unit="chars"`` (the notebook's setup is ``chunk_size=800,
    overlap=400, unit="chars"``). ``overlap`` defaults to an eighth of the chunk size. A file that cannot be read
    (empty, corrupt, a PDF without a text layer) raises :class:`DataError` naming it, unless ``skip_bad`` is set,
    in which case it is skipped with a warning.
    """
    from tqdm.auto import tqdm

    output = Path(output)
    if output.exists() and not overwrite:
        raise ArtifactError(
            f"{output} already exists; choose another output path or pass overwrite=True (--overwrite)"
        )
    if isinstance(paths, str | Path):
        paths = [paths]
    files = [(f, s) for f, s in collect_files(paths) if not f.resolve().is_relative_to(output.resolve())]
    if not files:
        raise DataError(f"no files to ingest outside the output folder {output}")
    chunker = Chunker(chunk_size, overlap, unit=unit, model=model)
    started = time.perf_counter()

    documents: list[Document] = []
    sources: list[dict[str, Any]] = []
    used: set[str] = set()
    bar = tqdm(files, desc="ingest", unit="file", disable=not progress)
    try:
        for path, source in bar:
            bar.set_postfix_str(source[-40:], refresh=False)
            reader = reader_for(path)
            if reader is None:  # pragma: no cover - collect_files only returns supported files
                continue
            try:
                chunks = chunk_sections(reader.read(path), chunker, markdown=reader.markdown)
            except DataError as exc:
                if not skip_bad:
                    raise
                logger.warning("skipping %s", exc)
                sources.append({"source": source, "skipped": str(exc)})
                continue
            prefix = _id_prefix(source, used)
            for n, (text, metadata) in enumerate(chunks):
                meta = {"source": source, **metadata, "chunk": n}
                documents.append(Document(f"{prefix}-{n}", text, metadata=meta))
            sources.append({"source": source, "chunks": len(chunks)})
            logger.info("%s: %d chunks", source, len(chunks))
    finally:
        bar.close()
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
    try:
        with atomic_dir(output, overwrite=overwrite) as tmp:
            write_corpus(tmp / "corpus.jsonl", documents)
            with atomic_open(tmp / MANIFEST_FILE) as handle:
                json.dump(manifest, handle, indent=2)
                handle.write("\n")
    except OSError as exc:
        raise QadapterError(f"{output}: cannot write the workspace ({exc.strerror or exc})") from None
    logger.info(
        "ingested %d files into %d chunks in %.1fs -> %s",
        len(files),
        len(documents),
        time.perf_counter() - started,
        output,
    )
    return Workspace(output)

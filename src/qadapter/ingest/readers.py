"""Readers turn one file into text sections, one reader per format, chosen by file suffix.

A reader returns a :class:`FileText`: :class:`Section` objects (the text plus the metadata that travels with every
chunk cut from it; PDF: one section per page, so each chunk can name its page) and, for text formats, the encoding
the bytes were decoded with (recorded in the workspace's ``ingest.json``). To support a new format, write a function
``read(path, encoding) -> FileText`` and :func:`register_reader` it; nothing else changes.

Text that is not UTF-8 is decoded with the encoding the user gave (``--encoding``) or else the one
``charset-normalizer`` detects, and which one was assumed is logged and recorded, never silent. HTML is read with the
regular expressions into text only (no tree, :mod:`qadapter.ingest.html_text`), so time and memory stay linear
even for a file of a million unclosed tags.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.core.extras import require
from qadapter.errors import DataError, QadapterError
from qadapter.ingest.html_text import html_text, html_title

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    """A run of text from one file, with metadata such as ``{"page": 3}``."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileText:
    """What a reader got from one file: its sections, and the encoding its bytes were decoded with (None for
    formats that are not plain bytes of text, like PDF)."""

    sections: list[Section]
    encoding: str | None = None


@dataclass(frozen=True)
class Reader:
    """How to read one format: the function, and whether its text is Markdown (split at headings and blocks).

    ``read(path, encoding)`` gets the encoding the user asked for (None: UTF-8, else detected)."""

    name: str
    read: Callable[[Path, str | None], FileText]
    markdown: bool = False


_READERS: dict[str, Reader] = {}


def register_reader(suffixes: tuple[str, ...], reader: Reader) -> None:
    """Use ``reader`` for files ending in any of ``suffixes`` (like ``".pdf"``; case-insensitive)."""
    for suffix in suffixes:
        _READERS[suffix.lower()] = reader


def supported_suffixes() -> list[str]:
    return sorted(_READERS)


def reader_for(path: Path) -> Reader | None:
    """The reader for ``path``'s suffix, or None when the format is not supported."""
    return _READERS.get(path.suffix.lower())


# -- helpers ---------------------------------------------------------------------------------------------------------
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str, *, collapse_spaces: bool = True) -> str:
    """Normalise line endings and drop NULs and trailing spaces; keep line and paragraph breaks for the splitter.

    ``collapse_spaces`` also squeezes runs of spaces and leading indentation (layout noise in PDF and HTML text);
    it is off for text and Markdown, where indentation can mean something (code blocks, nested lists).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if collapse_spaces:
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    else:
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not data.strip():
        raise DataError(f"{path}: the file is empty; remove it or give it some text")
    return data


def check_encoding(encoding: str | None) -> str | None:
    """``encoding`` as Python's canonical codec name, or a one-line error naming ``--encoding``."""
    if encoding is None:
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise QadapterError(
            f"unknown text encoding '{encoding}'; pass --encoding with a name like utf-8, latin-1, cp1252 or utf-16"
        ) from None


#: When several encodings explain the bytes equally well (the same chaos and coherence), the most common one wins:
#: Latin-1 text decodes identically as cp1252, but also plausibly as cp1250 or cp1257, which turn è into č.
PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15")


def _best_guess(results: Any) -> Any:
    best = results.best()
    if best is None:
        return None
    tied = [m for m in results if m.chaos == best.chaos and m.coherence == best.coherence]
    for preferred in PREFERRED_ENCODINGS:
        for match in tied:
            if match.encoding == preferred:
                return match
    return best


def _decode(path: Path, data: bytes, encoding: str | None) -> tuple[str, str]:
    """``(text, encoding used)``: the given encoding, else UTF-8, else what charset-normalizer detects (logged)."""
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: not valid {encoding} text (byte {exc.start}); check --encoding, or leave it out to detect it"
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    charset_normalizer = require(
        "charset_normalizer", extra="ingest", purpose="reading text that is not UTF-8"
    )
    best = _best_guess(charset_normalizer.from_bytes(data))
    if best is None:
        raise DataError(
            f"{path}: not UTF-8 text and its encoding cannot be detected; pass --encoding (e.g. latin-1) or convert "
            "it to UTF-8"
        )
    logger.warning(
        "%s: not UTF-8; decoded as %s (detected; pass --encoding to choose another)", path, best.encoding
    )
    return str(best), str(best.encoding)


def _nonempty(path: Path, text: str, what: str = "text", *, collapse_spaces: bool = True) -> str:
    text = clean_text(text, collapse_spaces=collapse_spaces)
    if not text:
        raise DataError(
            f"{path}: no {what} in this file (only whitespace or markup); remove it or give it some text"
        )
    return text


# -- formats ---------------------------------------------------------------------------------------------------------
def read_text(path: Path, encoding: str | None = None) -> FileText:
    """Plain text (and Markdown: the MarkdownSplitter uses the markup itself to find good cut points)."""
    text, used = _decode(path, _read_bytes(path), encoding)
    return FileText([Section(_nonempty(path, text, collapse_spaces=False))], used)


def read_html(path: Path, encoding: str | None = None) -> FileText:
    """HTML: the visible text, without scripts, styles and page furniture (nav, header, footer, head)."""
    markup, used = _decode(path, _read_bytes(path), encoding)
    title = html_title(markup)
    body = _nonempty(path, html_text(markup), what="visible text")
    return FileText([Section(body, {"title": title} if title else {})], used)


def read_pdf(path: Path, encoding: str | None = None) -> FileText:
    """PDF text per page with pypdf. Pages without text are skipped; a PDF with no text at all is an error."""
    import pypdf
    from pypdf.errors import PyPdfError

    data = _read_bytes(path)
    if b"%PDF-" not in data[:1024]:  # the header may follow up to 1 KB of junk
        raise DataError(f"{path}: not a PDF file (it does not start with %PDF); check the file or its suffix")
    try:
        pdf = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if pdf.is_encrypted and not pdf.decrypt(""):
            raise DataError(
                f"{path}: the PDF is encrypted with a password; save an unencrypted copy and ingest that"
            )
        pages = list(pdf.pages)
    except DataError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DataError(
            f"{path}: corrupt or unreadable PDF ({type(exc).__name__}: {exc}); re-export or repair it"
        ) from None
    if not pages:
        raise DataError(f"{path}: the PDF has no pages")
    sections = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # pypdf raises many exception types on damaged content streams
            raise DataError(
                f"{path}: page {number} is corrupt ({type(exc).__name__}: {exc}); re-export or repair the PDF"
            ) from None
        text = clean_text(text)
        if text:
            sections.append(Section(text, {"page": number}))
    if not sections:
        raise DataError(
            f"{path}: no text layer in any of its {len(pages)} page(s) (a scanned or image-only PDF); "
            "run OCR first, e.g. 'ocrmypdf in.pdf out.pdf', and ingest the result"
        )
    return FileText(sections)


register_reader((".pdf",), Reader("pdf", read_pdf))
register_reader((".md", ".markdown"), Reader("markdown", read_text, markdown=True))
register_reader((".txt", ".text"), Reader("text", read_text))
register_reader((".html", ".htm"), Reader("html", read_html))

"""Readers turn one file into text sections, one reader per format, chosen by file suffix.

A reader returns :class:`Section` objects: the text plus the metadata that travels with every chunk cut from it
(PDF: one section per page, so each chunk can name its page). To support a new format, write a function
``read(path) -> list[Section]`` and :func:`register_reader` it; nothing else changes.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    """A run of text from one file, with metadata such as ``{"page": 3}``."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reader:
    """How to read one format: the function, and whether its text is Markdown (split at headings and blocks)."""

    name: str
    read: Callable[[Path], list[Section]]
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


def _decode(path: Path, data: bytes) -> str:
    """Decode as UTF-8, else let beautifulsoup's UnicodeDammit guess the encoding (and say so)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from bs4 import UnicodeDammit

        guess = UnicodeDammit(data)
        if guess.unicode_markup is None:
            raise DataError(
                f"{path}: not UTF-8 text and its encoding cannot be guessed; convert it to UTF-8"
            ) from None
        logger.warning("%s: not UTF-8; decoded as %s", path, guess.original_encoding)
        return guess.unicode_markup


def _nonempty(path: Path, text: str, what: str = "text", *, collapse_spaces: bool = True) -> list[Section]:
    text = clean_text(text, collapse_spaces=collapse_spaces)
    if not text:
        raise DataError(
            f"{path}: no {what} in this file (only whitespace or markup); remove it or give it some text"
        )
    return [Section(text)]


# -- formats ---------------------------------------------------------------------------------------------------------
def read_text(path: Path) -> list[Section]:
    """Plain text (and Markdown: the MarkdownSplitter uses the markup itself to find good cut points)."""
    return _nonempty(path, _decode(path, _read_bytes(path)), collapse_spaces=False)


def read_html(path: Path) -> list[Section]:
    """HTML: the visible text, without scripts, styles and page furniture (nav, header, footer)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_bytes(path), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "nav", "header", "footer", "head"]):
        tag.decompose()
    sections = _nonempty(path, soup.get_text("\n"), what="visible text")
    return [Section(sections[0].text, {"title": title} if title else {})]


def read_pdf(path: Path) -> list[Section]:
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
    return sections


register_reader((".pdf",), Reader("pdf", read_pdf))
register_reader((".md", ".markdown"), Reader("markdown", read_text, markdown=True))
register_reader((".txt", ".text"), Reader("text", read_text))
register_reader((".html", ".htm"), Reader("html", read_html))

"""Ingest: PDF, Markdown, plain-text and HTML files (or folders of them) become the chunks of a workspace corpus.

:func:`ingest` (in :mod:`qadapter.ingest.ingesting`) reads each file with the reader for its suffix
(:mod:`qadapter.ingest.readers`), chunks it (:mod:`qadapter.ingest.chunking`) and writes the workspace atomically.
"""

from qadapter.ingest.chunking import Chunker
from qadapter.ingest.files import collect_files
from qadapter.ingest.ingesting import MANIFEST_FILE, chunk_sections, ingest
from qadapter.ingest.readers import FileText, Reader, Section, register_reader, supported_suffixes

__all__ = [
    "MANIFEST_FILE",
    "Chunker",
    "FileText",
    "Reader",
    "Section",
    "chunk_sections",
    "collect_files",
    "ingest",
    "register_reader",
    "supported_suffixes",
]

"""Import existing question/chunk data into a workspace: a BEIR folder, the notebook's JSON, LlamaIndex's
``EmbeddingQAFinetuneDataset`` JSON, or a JSONL log of real user queries.

Each format is one module with an :class:`Importer` in :mod:`qadapter.importers.registry`;
:func:`import_data` (in :mod:`qadapter.importers.importing`) picks one, loads and validates everything in memory,
and only then writes, so a bad source never leaves a half-written workspace.
"""

from qadapter.importers.base import ImportedData, Importer
from qadapter.importers.importing import MANIFEST_FILE, import_data
from qadapter.importers.registry import IMPORTERS, detect_format, format_choices, register_importer

__all__ = [
    "IMPORTERS",
    "MANIFEST_FILE",
    "ImportedData",
    "Importer",
    "detect_format",
    "format_choices",
    "import_data",
    "register_importer",
]

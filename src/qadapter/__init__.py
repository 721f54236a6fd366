"""qadapter: learn a small query-side adapter that improves retrieval without re-embedding the knowledge base.

The public API loads lazily, so ``import qadapter`` stays fast and applying an adapter needs numpy only::

    import qadapter
    adapter = qadapter.load_adapter("my-adapter")
    adapted = adapter.transform(query_embeddings)
"""

from __future__ import annotations

from typing import Any

from qadapter.core.extras import import_module
from qadapter.version import __version__

_LAZY = {
    "Adapter": "qadapter.adapters",
    "load_adapter": "qadapter.adapters",
    "save_adapter": "qadapter.adapters",
    "Workspace": "qadapter.data",
    "Document": "qadapter.data",
    "Query": "qadapter.data",
    "get_encoder": "qadapter.encoders",
    "EmbeddingCache": "qadapter.encoders",
    "evaluate": "qadapter.evaluate",
    "train": "qadapter.train",
    "ingest": "qadapter.ingest",
    "import_data": "qadapter.importers",
    "run": "qadapter.pipeline",
    "QadapterError": "qadapter.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qadapter' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

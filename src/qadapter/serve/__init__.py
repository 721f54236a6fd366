"""Serve an adapter over HTTP: an OpenAI-compatible ``/v1/embeddings`` endpoint (needs ``pip install 'qadapter[serve]'``).

Queries get the adapter; documents get the base model's vectors unchanged. :func:`serve` is the entry point
behind ``qadapter serve``; :func:`create_app` (in :mod:`qadapter.serve.app`) builds the app for embedding it
in your own ASGI server or tests. FastAPI and uvicorn are imported only when used.
"""

from __future__ import annotations

from typing import Any

from qadapter.core.extras import require
from qadapter.serve.batching import BatcherBusy, DeadlineExceeded, MicroBatcher
from qadapter.serve.server import PURPOSE, build_encoder, load_served_model, serve

#: names that need FastAPI, re-exported lazily so a missing extra is one error naming it
_LAZY = {
    "create_app": "qadapter.serve.app",
    "ServeLimits": "qadapter.serve.app",
    "EmbeddingRequest": "qadapter.serve.requests",
    "INPUT_TYPES": "qadapter.serve.requests",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require("fastapi", purpose=PURPOSE)
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qadapter.serve' has no attribute {name!r}")


__all__ = [
    "INPUT_TYPES",
    "BatcherBusy",
    "DeadlineExceeded",
    "EmbeddingRequest",
    "MicroBatcher",
    "ServeLimits",
    "build_encoder",
    "create_app",
    "load_served_model",
    "serve",
]

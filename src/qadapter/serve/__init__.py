"""Serve an adapter over HTTP: an OpenAI-compatible ``/v1/embeddings`` endpoint (needs ``pip install 'qadapter[serve]'``).

Queries get the adapter; documents get the base model's vectors unchanged. :func:`serve` is the entry point
behind ``qadapter serve``; :func:`create_app` (in :mod:`qadapter.serve.app`) builds the app for embedding it
in your own ASGI server or tests. FastAPI and uvicorn are imported only when used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qadapter.errors import ArtifactError, require
from qadapter.serve.batching import BatcherBusy, MicroBatcher

if TYPE_CHECKING:
    from qadapter.adapters import Adapter
    from qadapter.encoders import Encoder

logger = logging.getLogger(__name__)

_APP_NAMES = {"create_app", "EmbeddingRequest", "INPUT_TYPES"}
_PURPOSE = "serving embeddings over HTTP"


def __getattr__(name: str) -> Any:
    """Import the web app lazily, so a missing FastAPI is one error naming the extra to install."""
    if name in _APP_NAMES:
        require("fastapi", extra="serve", purpose=_PURPOSE)
        from qadapter.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'qadapter.serve' has no attribute {name!r}")


def load_served_model(
    adapter_path: str | Path,
    *,
    model: str | None = None,
    base_url: str | None = None,
    model_api_key_env: str = "OPENAI_API_KEY",
) -> tuple[Adapter, Encoder]:
    """Load the adapter folder and its base encoder (by default the model recorded in the adapter's config).

    Fails with a one-line error when the encoder's dimension does not match the adapter's.
    """
    from qadapter.adapters import load_adapter, read_adapter_config
    from qadapter.encoders import DEFAULT_MODEL, get_encoder

    config = read_adapter_config(adapter_path)
    base = config.get("base_model")
    recorded = base.get("name") if isinstance(base, dict) else None
    if model is None and isinstance(recorded, str) and recorded.startswith("st:"):
        raise ArtifactError(
            f"{adapter_path}: the adapter was trained on the local model folder '{recorded[3:]}'; "
            "pass that folder with --model PATH"
        )
    if model and recorded and model != recorded:
        logger.warning("the adapter was trained on base model %s, serving it with %s", recorded, model)
    encoder = get_encoder(
        model or recorded or DEFAULT_MODEL, base_url=base_url, api_key_env=model_api_key_env
    )
    adapter = load_adapter(adapter_path, expected_dim=encoder.dim)
    return adapter, encoder


def serve(
    adapter_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | None = None,
    base_url: str | None = None,
    model_api_key_env: str = "OPENAI_API_KEY",
    api_key: str | None = None,
    access_log: bool = False,
    log_level: str = "info",
    **limits: Any,
) -> None:
    """Load the adapter and its base model, then serve the embeddings endpoint until interrupted.

    ``limits`` are :func:`create_app`'s keyword arguments (``max_batch``, ``batch_wait_ms``, ``max_inputs``, ...).
    """
    require("fastapi", extra="serve", purpose=_PURPOSE)
    uvicorn = require("uvicorn", extra="serve", purpose=_PURPOSE)
    from qadapter.serve.app import create_app

    adapter, encoder = load_served_model(
        adapter_path, model=model, base_url=base_url, model_api_key_env=model_api_key_env
    )
    if api_key is None and host not in {"127.0.0.1", "localhost", "::1"}:
        logger.warning("serving on %s without an API key: anyone who can reach this port can use it", host)
    app = create_app(
        adapter, encoder, api_key=api_key, model_name=f"qadapter/{Path(adapter_path).name}", **limits
    )
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level=log_level)


__all__ = [
    "INPUT_TYPES",
    "BatcherBusy",
    "EmbeddingRequest",
    "MicroBatcher",
    "create_app",
    "load_served_model",
    "serve",
]

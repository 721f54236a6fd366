"""``serve()``: load the adapter and its base model, check they belong together, and run uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qadapter.core.device import DEFAULT_PRECISION
from qadapter.core.extras import require
from qadapter.errors import ArtifactError

if TYPE_CHECKING:
    from qadapter.adapters import Adapter
    from qadapter.encoders import Encoder

logger = logging.getLogger(__name__)

PURPOSE = "serving embeddings over HTTP"
#: most connections and requests in flight at once; past it uvicorn answers 503 (protects memory and sockets)
MAX_CONNECTIONS = 1024
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def build_encoder(
    model: str,
    *,
    base_url: str | None,
    api_key_env: str,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
) -> Encoder:
    """The one place the served base encoder is constructed."""
    from qadapter.encoders import get_encoder

    return get_encoder(model, base_url=base_url, api_key_env=api_key_env, device=device, precision=precision)


def load_served_model(
    adapter_path: str | Path,
    *,
    model: str | None = None,
    base_url: str | None = None,
    model_api_key_env: str = "OPENAI_API_KEY",
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
) -> tuple[Adapter, Encoder]:
    """Load the adapter folder and its base encoder (by default the model recorded in the adapter's config).

    Refuses, in one line, an encoder other than the adapter's recorded base model (checked before the model is
    loaded) or one whose dimension differs from the adapter's.
    """
    from qadapter.adapters import load_adapter, read_adapter_config
    from qadapter.adapters.artifact import check_base_model
    from qadapter.encoders import DEFAULT_MODEL

    base = read_adapter_config(adapter_path).get("base_model")
    recorded = base.get("name") if isinstance(base, dict) else None
    recorded = recorded if isinstance(recorded, str) and recorded else None
    if model is None and recorded is not None and recorded.startswith("st:"):
        raise ArtifactError(
            f"{adapter_path}: the adapter was trained on the local model folder '{recorded[3:]}'; "
            "pass that folder with --model PATH"
        )
    encoder = build_encoder(
        model or recorded or DEFAULT_MODEL,
        base_url=base_url,
        api_key_env=model_api_key_env,
        device=device,
        precision=precision,
    )
    check_base_model(adapter_path, recorded, encoder.name)
    adapter = load_adapter(adapter_path, expected_dim=encoder.dim, expected_model=encoder.name)
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
    docs: bool = False,
    access_log: bool = False,
    log_level: str = "info",
    idle_timeout_s: int = 5,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
    **limits: Any,
) -> None:
    """Load the adapter and its base model, then serve the embeddings endpoint until interrupted.

    ``limits`` are the fields of :class:`qadapter.serve.app.ServeLimits` (``max_batch``, ``request_timeout_s``, ...).
    ``idle_timeout_s`` closes a keep-alive connection idle that long; ``precision`` is the dtype the base model
    computes in (vectors are float32 either way).
    """
    require("fastapi", purpose=PURPOSE)
    uvicorn = require("uvicorn", purpose=PURPOSE)
    from qadapter.serve.app import create_app

    adapter, encoder = load_served_model(
        adapter_path,
        model=model,
        base_url=base_url,
        model_api_key_env=model_api_key_env,
        device=device,
        precision=precision,
    )
    if api_key is None and host not in LOCAL_HOSTS:
        logger.warning("serving on %s without an API key: anyone who can reach this port can use it", host)
    name = f"qadapter/{Path(adapter_path).name}"
    app = create_app(adapter, encoder, api_key=api_key, model_name=name, docs=docs, **limits)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        timeout_keep_alive=idle_timeout_s,
        limit_concurrency=MAX_CONNECTIONS,
    )

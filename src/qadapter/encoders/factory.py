"""Build an encoder from a model spec: the bundled model, a local Sentence Transformers folder, or ``openai:NAME``."""

from __future__ import annotations

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.core.device import DEFAULT_PRECISION, check_precision
from qadapter.encoders.base import Encoder
from qadapter.errors import QadapterError


def get_encoder(
    model: str = DEFAULT_MODEL,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    dimensions: int | None = None,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
) -> Encoder:
    """Build an encoder from a model spec.

    - ``all-MiniLM-L6-v2`` (default): the bundled model, offline.
    - a folder path: a local Sentence Transformers model.
    - ``openai:NAME``: an OpenAI-compatible ``/v1/embeddings`` endpoint at ``base_url``.

    ``device`` (``auto|cpu|cuda|mps``, see :data:`qadapter.core.device.DEVICES`) is where a local model runs;
    ``auto`` picks a GPU when one is visible. ``precision`` (``float32|float16|bfloat16``, see
    :data:`qadapter.core.device.PRECISIONS`) is the dtype a local model computes in; vectors are float32 either way.
    """
    precision = check_precision(precision)
    if model.startswith("openai:"):
        if precision != DEFAULT_PRECISION:
            raise QadapterError(
                f"--precision {precision} applies to local Sentence Transformers models; the endpoint of "
                f"'{model}' decides its own precision, so leave --precision at {DEFAULT_PRECISION}"
            )
        from qadapter.encoders.openai_endpoint import OpenAIEncoder

        return OpenAIEncoder(
            model.split(":", 1)[1], base_url=base_url, api_key_env=api_key_env, dimensions=dimensions
        )
    from qadapter.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model, device=device, precision=precision)

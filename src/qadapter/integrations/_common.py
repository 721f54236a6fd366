"""What every integration shares: resolve (adapter, encoder) from paths or objects and check they fit together."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qadapter.adapters import Adapter, load_adapter
from qadapter.adapters.artifact import check_base_model
from qadapter.encoders import Encoder, get_encoder
from qadapter.errors import QadapterError


def resolve(
    adapter: Adapter | str | Path, encoder: Encoder | str | None = None
) -> tuple[Adapter, Encoder, Path | None]:
    """Load the adapter (when given a folder) and the encoder (by default the adapter's own base model).

    Returns ``(adapter, encoder, adapter_path)``; ``adapter_path`` is ``None`` for an in-memory adapter.
    """
    path: Path | None = None
    if not isinstance(adapter, Adapter):
        path = Path(adapter)
        adapter = load_adapter(path)
    if encoder is None:
        if adapter.base_model is None:
            raise QadapterError(
                "the adapter does not record its base model; pass the encoder (or model) explicitly"
            )
        encoder = get_encoder(adapter.base_model)
    elif isinstance(encoder, str):
        encoder = get_encoder(encoder)
    check_base_model(path or "adapter", adapter.base_model, encoder.name)
    return adapter, encoder, path


class QueryAdapterEmbedder:
    """Base-model vectors for documents, adapted vectors for queries: the one rule every integration follows."""

    def __init__(self, adapter: Adapter | str | Path, encoder: Encoder | str | None = None) -> None:
        self.adapter, self.encoder, self.adapter_path = resolve(adapter, encoder)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, kind="document")

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.adapter.dim), dtype=np.float32)
        return self.adapter.transform(self.encoder.encode(texts, kind="query"))

"""The encoder interface: anything that turns texts into vectors.

The adapter only ever sees arrays, so every encoder is interchangeable: the bundled model, a local
Sentence Transformers folder, or an OpenAI-compatible embeddings endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

TextKind = Literal["query", "document"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into float32 vectors of a fixed dimension.

    ``name`` is the model's human name, recorded with adapters to check that they match their base model. The
    embedding cache keys vectors by ``cache_identity(memo)`` when an encoder has that method (qadapter's encoders
    derive it from what the model is: a hash of its files, or its normalised endpoint), else by ``name``; an
    encoder without ``cache_identity`` must then give different models different names.
    """

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, kind: TextKind = "query", batch_size: int = 64) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array."""
        ...

"""Where the encoding runs: the ``--engine`` registry of ``qadapter embed``.

An engine takes the texts the cache does not hold yet and yields ``(texts, vectors)`` batches, in any order; the
caller writes each batch to the cache as it arrives, so every engine resumes the same way after an interruption.
Adding an engine is one function and one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from qadapter.encoders.base import Encoder, TextKind
from qadapter.errors import QadapterError

Batches = Iterator[tuple[list[str], np.ndarray]]
EngineFn = Callable[[Encoder, Sequence[str], TextKind, int], Batches]

#: engine name -> "module:function" (imported when used, so Ray loads only for ``--engine ray``)
ENGINES: dict[str, str] = {
    "local": "qadapter.encoders.engines:encode_local",
    "ray": "qadapter.encoders.ray_engine:encode_ray",
}


def chunk_size(batch_size: int) -> int:
    """Texts per encoder call (and per cache transaction): a few model batches."""
    return max(batch_size * 4, 256)


def encode_local(encoder: Encoder, texts: Sequence[str], kind: TextKind, batch_size: int) -> Batches:
    """Encode in this process, one chunk after another."""
    step = chunk_size(batch_size)
    for start in range(0, len(texts), step):
        chunk = list(texts[start : start + step])
        yield chunk, np.asarray(encoder.encode(chunk, kind=kind, batch_size=batch_size), dtype=np.float32)


def get_engine(name: str) -> EngineFn:
    if name not in ENGINES:
        raise QadapterError(f"unknown engine '{name}'; valid engines: {', '.join(ENGINES)} (--engine)")
    module, attr = ENGINES[name].split(":")
    fn: EngineFn = getattr(importlib.import_module(module), attr)
    return fn

"""``qadapter embed --engine ray``: encode on Ray Data, with encoders as an actor pool (one GPU each where present).

The driver looks up the cache, hands only the missing texts to Ray in chunks of the local engine's size (so every
encoder call sees the same texts as on the local path and gives the same vectors), and writes each returned chunk to
the workspace cache as it arrives: the cache format is the same, and an interrupted run resumes with what is left.

Ray joins the cluster named by ``RAY_ADDRESS`` when set, else starts a local one. On a cluster the model must be
reachable at the same path on every node (or be the bundled model / an ``openai:`` endpoint).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from qadapter.core.extras import require
from qadapter.encoders.base import Encoder, TextKind
from qadapter.encoders.engines import Batches, chunk_size

logger = logging.getLogger(__name__)


class _EncodeChunks:
    """A Ray Data actor: holds one encoder (its model loaded once) and encodes whole chunks."""

    def __init__(self, encoder: Encoder, kind: TextKind, batch_size: int) -> None:
        self.encoder, self.kind, self.batch_size = encoder, kind, batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out_vectors = []
        for payload in batch["texts"]:
            texts = json.loads(payload)
            vectors = np.asarray(
                self.encoder.encode(texts, kind=self.kind, batch_size=self.batch_size), np.float32
            )
            out_vectors.append(np.ascontiguousarray(vectors).tobytes() + np.int64(vectors.shape[1]).tobytes())
        return {"texts": batch["texts"], "vectors": np.array(out_vectors, dtype=object)}


def _pool(ray: Any) -> dict[str, Any]:
    """One actor per GPU when the cluster has GPUs, else one per CPU (each actor uses its CPU's threads)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return {"concurrency": gpus, "num_gpus": 1}
    return {"concurrency": max(1, int(resources.get("CPU", 1))), "num_cpus": 1}


def encode_ray(encoder: Encoder, texts: Sequence[str], kind: TextKind, batch_size: int) -> Batches:
    """Yield ``(texts, vectors)`` chunks encoded by a Ray Data actor pool."""
    ray = require("ray", extra="ray", purpose="qadapter embed --engine ray")
    require("ray.data", extra="ray", purpose="qadapter embed --engine ray")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    step = chunk_size(batch_size)
    chunks = [json.dumps(list(texts[s : s + step])) for s in range(0, len(texts), step)]
    pool = _pool(ray)
    logger.info("ray: encoding %d texts in %d chunks on %s", len(texts), len(chunks), pool)
    dataset = ray.data.from_items([{"texts": c} for c in chunks], override_num_blocks=max(1, len(chunks)))
    encoded = dataset.map_batches(
        _EncodeChunks,
        fn_constructor_args=(encoder, kind, batch_size),
        batch_size=1,
        batch_format="numpy",
        **pool,
    )
    for batch in encoded.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=1):
        for payload, blob in zip(batch["texts"], batch["vectors"], strict=True):
            dim = int(np.frombuffer(blob[-8:], dtype=np.int64)[0])
            yield json.loads(payload), np.frombuffer(blob[:-8], dtype=np.float32).reshape(-1, dim)

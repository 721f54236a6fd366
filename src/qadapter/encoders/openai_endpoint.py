"""Encoder for any OpenAI-compatible ``/v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, TEI, LiteLLM, qadapter serve)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from qadapter.core.extras import require
from qadapter.encoders.base import TextKind
from qadapter.encoders.identity import openai_identity
from qadapter.errors import QadapterError


class OpenAIEncoder:
    """Calls ``client.embeddings.create`` in batches. The API key comes from ``api_key_env`` (default OPENAI_API_KEY)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        dimensions: int | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self.api_key_env = api_key_env
        self.dimensions = dimensions
        self.timeout = timeout
        self.max_retries = max_retries
        self.name = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        self._client: Any = None
        self._dim: int | None = dimensions

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the HTTP client (it is rebuilt on first use)."""
        return {**self.__dict__, "_client": None}

    def cache_identity(self, memo: object = None) -> str:
        """Normalised endpoint URL, model name and dimensions: the same model however the URL is spelled."""
        return openai_identity(self.model, self.base_url, self.dimensions)

    @property
    def client(self) -> Any:
        if self._client is None:
            openai = require("openai", extra="openai", purpose="an OpenAI-compatible embeddings endpoint")
            api_key = os.environ.get(self.api_key_env) or "not-needed"
            self._client = openai.OpenAI(
                base_url=self.base_url, api_key=api_key, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._client

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return self._dim

    def encode(self, texts: Sequence[str], *, kind: TextKind = "query", batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + batch_size]]
            kwargs: dict[str, Any] = {"model": self.model, "input": batch}
            if self.dimensions:
                kwargs["dimensions"] = self.dimensions
            try:
                response = self.client.embeddings.create(**kwargs)
            except Exception as exc:  # the openai client has already retried transient errors
                raise QadapterError(
                    f"embeddings endpoint {self.base_url or 'api.openai.com'} failed: {exc}"
                ) from exc
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise QadapterError(
                    f"embeddings endpoint returned {len(data)} vectors for {len(batch)} inputs"
                )
            rows.extend(item.embedding for item in data)
        out = np.asarray(rows, dtype=np.float32)
        self._dim = out.shape[1]
        return out

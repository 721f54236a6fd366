"""Typed settings for synthetic query generation.

One frozen dataclass holds every knob, checked when it is created, so a bad value fails before a single paid call.
It is saved next to the journal of each run so the answers on disk can always be traced to the settings that asked
for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from qadapter.configtools import from_mapping
from qadapter.errors import QadapterError

DEFAULT_SPLIT = "generated"
#: Questions asked per chunk, for ``generate`` and ``run`` alike (the CLI flags and the Python API read this).
DEFAULT_PER_CHUNK = 5
#: Old name of ``llm_base_url`` in config files and keyword arguments, still accepted with a deprecation note.
_LEGACY_KEYS = {"base_url": "llm_base_url"}


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of one generation run (defaults < config file < CLI flags)."""

    model: str = ""
    llm_base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    per_chunk: int = DEFAULT_PER_CHUNK
    prompt: str = "default"
    examples: str | None = None
    num_examples: int = 5
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    max_retries: int = 6
    max_parse_retries: int = 3
    timeout: float = 60.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    temperature: float = 0.7
    max_tokens: int | None = None
    json_mode: bool = False
    split: str = DEFAULT_SPLIT
    test_fraction: float | None = None
    seed: int = 0
    run: str | None = None
    max_chars: int = 300
    min_words: int = 2
    copy_threshold: float = 0.8
    dedup_threshold: float | None = 0.95
    price_input: float | None = None
    price_output: float | None = None
    offline: bool = False

    def __post_init__(self) -> None:
        if not self.offline and not self.model.strip():
            raise QadapterError(
                "no model given; pass --model NAME (a chat model on an OpenAI-compatible endpoint) or --offline"
            )
        self._check_counts()
        self._check_ranges()
        self._check_names()

    def _check_counts(self) -> None:
        for name in ("per_chunk", "concurrency", "rpm", "tpm", "timeout", "max_chars", "max_tokens"):
            value = getattr(self, name)
            if value is None and name in ("rpm", "tpm", "max_tokens"):
                continue
            if value is None or value <= 0:
                raise QadapterError(f"{name} must be a positive number, got {value!r}")
        if self.per_chunk > 100:
            raise QadapterError(
                f"per_chunk must be at most 100, got {self.per_chunk}; ask for fewer questions per call"
            )
        if self.max_retries < 0 or self.max_parse_retries < 0 or self.num_examples < 0:
            raise QadapterError("max_retries, max_parse_retries and num_examples must be >= 0")

    def _check_ranges(self) -> None:
        if self.backoff_base < 0 or self.backoff_max < self.backoff_base:
            raise QadapterError("backoff_base must be >= 0 and backoff_max >= backoff_base")
        if not 0.0 <= self.copy_threshold <= 1.0:
            raise QadapterError(f"copy_threshold must be in [0, 1], got {self.copy_threshold}")
        if self.dedup_threshold is not None and not 0.0 < self.dedup_threshold <= 1.0:
            raise QadapterError(f"dedup_threshold must be in (0, 1] or None, got {self.dedup_threshold}")
        if self.test_fraction is not None and not 0.0 < self.test_fraction < 1.0:
            raise QadapterError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        for name in ("price_input", "price_output"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise QadapterError(f"{name} must be >= 0 (USD per million tokens), got {value}")

    def _check_names(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.split):
            raise QadapterError(f"split name {self.split!r} may only use letters, digits, '_', '-' and '.'")
        if self.run is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.run):
            raise QadapterError(f"run name {self.run!r} may only use letters, digits, '_', '-' and '.'")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerateConfig:
        """Build a config from a mapping (a config file), rejecting unknown keys with the list of valid ones.

        ``base_url`` is read as ``llm_base_url`` (its old name) with a deprecation note."""
        values = dict(values)
        for old, new in _LEGACY_KEYS.items():
            if old not in values:
                continue
            value = values.pop(old)
            if values.get(new) is not None and value is not None and values[new] != value:
                raise QadapterError(
                    f"both {old}={value!r} and {new}={values[new]!r} given; {old} is the old name of {new}, "
                    f"keep only {new} (--llm-base-url)"
                )
            if value is not None:
                warnings.warn(
                    f"generate setting '{old}' is deprecated; use '{new}' (--llm-base-url), the chat endpoint",
                    DeprecationWarning,
                    stacklevel=3,
                )
                values[new] = value
        return from_mapping(cls, values, "generate", "setting")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> GenerateConfig:
        return dataclasses.replace(self, **changes)

    def run_name(self, prompt_name: str, prompt_version: str) -> str:
        """The journal name and the ``run`` stamped on its queries: stable for the settings that change what is
        asked, so a re-run continues the same run.

        The endpoint and the throughput settings (concurrency, limits, retries) are left out on purpose. Which
        answers are reused does not depend on this name at all (see :func:`qadapter.generate.journal.request_key`).
        """
        if self.run:
            return self.run
        asked = {
            "model": self.model,
            "per_chunk": self.per_chunk,
            "prompt": prompt_name,
            "prompt_version": prompt_version,
            "examples": self.examples,
            "num_examples": self.num_examples,
            "temperature": self.temperature,
            "json_mode": self.json_mode,
            "seed": self.seed,
        }
        digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:8]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.model}-{prompt_name}").strip("-")[:60]
        return f"{slug}-{digest}"

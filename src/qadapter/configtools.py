"""Shared behaviour of qadapter's typed configs (frozen dataclasses): strict construction from a mapping."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from qadapter.errors import QadapterError

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any], context: str, noun: str = "option") -> T:
    """Build ``cls`` from ``values`` (a config file or flags), rejecting unknown keys with the list of valid ones."""
    valid = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - valid)
    if unknown:
        raise QadapterError(
            f"unknown {context} {noun}(s) {unknown}; valid {noun}s: {', '.join(sorted(valid))}"
        )
    return cls(**values)

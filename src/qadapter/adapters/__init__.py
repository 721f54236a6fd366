"""Query adapters: the numpy transform and its safetensors + JSON folder format."""

from qadapter.adapters.adapter import KINDS, Adapter
from qadapter.adapters.artifact import (
    FORMAT_NAME,
    FORMAT_VERSION,
    load_adapter,
    read_adapter_config,
    save_adapter,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "Adapter",
    "load_adapter",
    "read_adapter_config",
    "save_adapter",
]

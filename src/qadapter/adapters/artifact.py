"""Save and load adapter folders: ``adapter.safetensors`` + ``adapter_config.json`` + a README model card.

The config records a format name and version and the library version; loading checks all three, the tensor
shapes, and (when asked) the base model and its dimension. Saving is atomic and never overwrites unless asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.adapters.adapter import Adapter
from qadapter.adapters.kinds import REGISTRY
from qadapter.data.atomic import atomic_dir
from qadapter.errors import ArtifactError
from qadapter.version import __version__

FORMAT_NAME = "qadapter.adapter"
FORMAT_VERSION = 1
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"
CARD_FILE = "README.md"


def save_adapter(
    adapter: Adapter,
    path: str | Path,
    *,
    overwrite: bool = False,
    extra_files: dict[str, bytes | str] | None = None,
) -> Path:
    """Write ``adapter`` to the folder ``path`` (atomically). ``extra_files`` adds report files next to it."""
    from safetensors.numpy import save_file

    from qadapter.adapters.card import model_card

    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "qadapter_version": __version__,
        **{
            k: v
            for k, v in adapter.config.items()
            if k not in {"format", "format_version", "qadapter_version"}
        },
        "kind": adapter.kind,
        "dim": adapter.dim,
        "hidden": adapter.hidden,
        "n_parameters": adapter.n_parameters,
    }
    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in adapter.tensors.items()}
        if not tensors:  # safetensors needs at least one tensor; an identity adapter stores none of its own
            tensors = {"_identity": np.zeros((0,), dtype=np.float32)}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME, "kind": adapter.kind})
        (tmp / CONFIG_FILE).write_text(
            json.dumps(config, indent=2, sort_keys=False, default=_json_default) + "\n"
        )
        (tmp / CARD_FILE).write_text(model_card(adapter, config))
        for name, content in (extra_files or {}).items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in adapter_config.json")


def read_adapter_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not path.is_dir():
        raise ArtifactError(f"{path}: adapter folder not found")
    if not config_path.is_file():
        raise ArtifactError(
            f"{path}: not an adapter folder (no {CONFIG_FILE}); train one with 'qadapter train'"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{config_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ArtifactError(f"{config_path}: not a UTF-8 text file; the adapter folder is corrupt") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ArtifactError(f"{config_path}: format is {got!r}, expected {FORMAT_NAME!r}")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ArtifactError(
            f"{config_path}: format_version {version!r} is not supported by qadapter {__version__} "
            f"(supports 1..{FORMAT_VERSION}); upgrade qadapter to load it"
        )
    if config.get("kind") not in REGISTRY:
        raise ArtifactError(
            f"{config_path}: unknown adapter kind {config.get('kind')!r}; valid kinds: {', '.join(REGISTRY)}"
        )
    if not isinstance(config.get("dim"), int) or config["dim"] <= 0:
        raise ArtifactError(f"{config_path}: 'dim' must be a positive integer, got {config.get('dim')!r}")
    return config


def load_adapter(
    path: str | Path, *, expected_dim: int | None = None, expected_model: str | None = None
) -> Adapter:
    """Load an adapter folder. Needs numpy and safetensors only.

    ``expected_dim`` / ``expected_model`` check that the adapter was trained for the embeddings it will be applied to.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    config = read_adapter_config(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{path}: missing {WEIGHTS_FILE}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(
            f"{weights}: cannot read tensors ({exc}); the file is corrupt or truncated"
        ) from None
    tensors.pop("_identity", None)
    base = config.get("base_model") or {}
    try:
        adapter = Adapter(config["kind"], int(config["dim"]), tensors, config)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    if expected_dim is not None and expected_dim != adapter.dim:
        raise ArtifactError(
            f"{path}: adapter was trained for {adapter.dim}-dimensional embeddings "
            f"({base.get('name', 'unknown model')}), but the embeddings here have dimension {expected_dim}"
        )
    if expected_model is not None and base.get("name") and base["name"] != expected_model:
        raise ArtifactError(
            f"{path}: adapter was trained on base model '{base['name']}', not '{expected_model}'; "
            "use the same embedding model the adapter was trained with"
        )
    return adapter

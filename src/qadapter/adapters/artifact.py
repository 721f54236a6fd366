"""Save and load adapter folders: ``adapter.safetensors`` + ``adapter_config.json`` + a README model card.

The config records a format name and version and the library version; loading checks all three, the tensor
shapes, and (when asked) the base model and its dimension. Saving is atomic and never overwrites unless asked.
"""

from __future__ import annotations

import json
import os
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
#: adapter_config.json is a few KB; anything past this is refused before it is read (a corrupt or hostile folder).
MAX_CONFIG_BYTES = 16 * 1024**2
#: safetensors dtypes an adapter may be stored in (loaded as float32); bfloat16 has no numpy type.
TENSOR_DTYPES = ("F16", "F32", "F64")


def check_finite(tensors: dict[str, np.ndarray], where: str) -> None:
    """Refuse tensors with NaN or infinite values: they would turn every query vector into NaN downstream."""
    for name, value in tensors.items():
        if not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise ArtifactError(
                f"{where}: tensor '{name}' has {bad} NaN or infinite value(s); the adapter is broken "
                "(training diverged or the file was damaged); retrain it"
            )


def save_adapter(
    adapter: Adapter,
    path: str | Path,
    *,
    overwrite: bool = False,
    extra_files: dict[str, bytes | str] | None = None,
) -> Path:
    """Write ``adapter`` to the folder ``path`` (atomically). ``extra_files`` adds report files next to it."""
    from safetensors import SafetensorError
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
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in adapter.tensors.items()}
    check_finite(tensors, f"cannot save the adapter to {path}")
    if not tensors:  # safetensors needs at least one tensor; an identity adapter stores none of its own
        tensors = {"_identity": np.zeros((0,), dtype=np.float32)}
    try:
        with atomic_dir(path, overwrite=overwrite) as tmp:
            save_file(
                tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME, "kind": adapter.kind}
            )
            _write_text(tmp / CONFIG_FILE, json.dumps(config, indent=2, default=_json_default) + "\n")
            _write_text(tmp / CARD_FILE, model_card(adapter, config))
            for name, content in (extra_files or {}).items():
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    target.write_bytes(content)
                else:
                    _write_text(target, content)
    except (OSError, SafetensorError) as exc:  # disk full, quota, read-only folder: nothing was published
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise ArtifactError(f"{path}: cannot save the adapter ({reason}); nothing was written") from None
    return path


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())  # a full disk shows up here, before the folder is published


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
    config = _parse_config(config_path)
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
    dim = config.get("dim")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= 1_000_000:
        raise ArtifactError(f"{config_path}: 'dim' must be a positive integer, got {str(dim)[:20]!r}")
    _check_base_model(config_path, config.get("base_model"))
    return config


def _parse_config(config_path: Path) -> Any:
    """The parsed config; its size is checked before reading, and every parse failure is one ArtifactError."""
    size = config_path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ArtifactError(
            f"{config_path}: {size:,} bytes is far too large for an adapter config (limit {MAX_CONFIG_BYTES:,}); "
            "the adapter folder is corrupt"
        )
    try:
        return json.loads(config_path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{config_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ArtifactError(f"{config_path}: not a UTF-8 text file; the adapter folder is corrupt") from None
    except RecursionError:
        raise ArtifactError(f"{config_path}: JSON nested too deeply; the adapter folder is corrupt") from None
    except ValueError as exc:  # e.g. an integer with more than 4,300 digits
        reason = str(exc).split(";")[0]
        raise ArtifactError(
            f"{config_path}: unreadable JSON ({reason}); the adapter folder is corrupt"
        ) from None


def _check_base_model(config_path: Path, base: Any) -> None:
    if base is None:
        return
    if not isinstance(base, dict):
        raise ArtifactError(
            f"{config_path}: 'base_model' must be an object like {{\"name\": ...}}, got {type(base).__name__}"
        )
    for key in ("name", "dim"):
        value = base.get(key)
        expected = str if key == "name" else int
        if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
            raise ArtifactError(
                f"{config_path}: 'base_model.{key}' must be a {expected.__name__}, got {type(value).__name__} "
                f"{str(value)[:20]!r}"
            )


def _read_tensors(weights: Path) -> dict[str, np.ndarray]:
    """The tensors of ``weights`` as float32, refusing dtypes numpy cannot hold (bfloat16) and NaN/Inf values."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    try:
        with safe_open(str(weights), framework="np") as handle:
            dtypes = {name: handle.get_slice(name).get_dtype() for name in handle.keys()}  # noqa: SIM118
        unsupported = {name: dtype for name, dtype in dtypes.items() if dtype not in TENSOR_DTYPES}
        if unsupported:
            name, dtype = next(iter(unsupported.items()))
            raise ArtifactError(
                f"{weights}: tensor '{name}' is stored as {dtype}; adapters are stored as "
                f"{', '.join(TENSOR_DTYPES)} (convert it to float32 and save again)"
            )
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ArtifactError(
            f"{weights}: cannot read tensors ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "the file is corrupt or truncated"
        ) from None
    check_finite(tensors, str(weights))
    return {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()}


def load_adapter(
    path: str | Path, *, expected_dim: int | None = None, expected_model: str | None = None
) -> Adapter:
    """Load an adapter folder. Needs numpy and safetensors only.

    ``expected_dim`` / ``expected_model`` check that the adapter was trained for the embeddings it will be applied to.
    """
    path = Path(path)
    config = read_adapter_config(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{path}: missing {WEIGHTS_FILE}")
    tensors = _read_tensors(weights)
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
    if expected_model is not None:
        check_base_model(path, base.get("name"), expected_model)
    return adapter


def check_base_model(where: str | Path, recorded: object, expected_model: str) -> None:
    """The one check that an adapter is applied to the base model it was trained on (``recorded``, if any)."""
    if recorded and recorded != expected_model:
        raise ArtifactError(
            f"{where}: adapter was trained on base model '{recorded}', not '{expected_model}'; "
            f"use the embedding model the adapter was trained with (--model {recorded})"
        )

"""What a model *is*, as one string: the embedding cache keys vectors by it, never by a folder or model name.

- A local Sentence Transformers folder (and the bundled model) is identified by a SHA-256 over its config, tokenizer
  and weight files. Hashing 90 MB takes a fraction of a second; the result is memoised by the files' paths, sizes and
  modification times, so a later run only ``stat``s the folder.
- An ``openai:`` model is identified by its normalised endpoint URL, model name and dimensions, so ``localhost`` and
  ``127.0.0.1``, a trailing ``/``, a default port, or the URL given by ``OPENAI_BASE_URL`` instead of ``--base-url``
  all name the same model.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from qadapter.errors import QadapterError

#: files that decide what a Sentence Transformers folder computes (configs, tokenizer, weights)
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".pt", ".pth", ".py")
#: sub-folders holding alternative exports (other runtimes) that the PyTorch model never reads
_SKIPPED_DIRS = {"onnx", "openvino", ".git", ".cache"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"

#: process-wide memo of folder digests; :class:`~qadapter.encoders.cache.EmbeddingCache` adds a persistent one
_MEMO: dict[str, str] = {}


def _model_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in rel[:-1]):
            continue
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES and not rel[-1].startswith("."):
            files.append(path)
    return files


def _fingerprint(root: Path, files: list[Path]) -> str:
    """A cheap stand-in for the content hash: every file's relative path, size and modification time."""
    h = hashlib.sha256(str(root).encode())
    for path in files:
        stat = path.stat()
        h.update(f"\0{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def folder_digest(path: str | Path, memo: MutableMapping[str, str] | None = None) -> str:
    """SHA-256 over the relative names and contents of a model folder's config, tokenizer and weight files.

    ``memo`` maps a folder's stat fingerprint to its digest (the cache passes one kept on disk), so unchanged
    folders are hashed once. Two folders with the same files give the same digest whatever they are called.
    """
    root = Path(path).resolve()
    files = _model_files(root)
    if not files:
        raise QadapterError(
            f"{root}: no model files (config, tokenizer, weights) found; pass a Sentence Transformers folder"
        )
    key = _fingerprint(root, files)
    for store in (_MEMO, memo):
        if store is not None and key in store:
            digest = store[key]
            _MEMO[key] = digest
            return digest
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    digest = h.hexdigest()
    _MEMO[key] = digest
    if memo is not None:
        memo[key] = digest
    return digest


def normalize_endpoint(url: str | None) -> str:
    """One spelling per endpoint: lower-case scheme and host, loopback names as 127.0.0.1, no default port, no
    trailing ``/``, no query or fragment. ``None`` means the official OpenAI endpoint."""
    raw = (url or DEFAULT_OPENAI_URL).strip()
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host in _LOOPBACK:
        host = "127.0.0.1"
    try:
        port = parts.port
    except ValueError:
        raise QadapterError(
            f"endpoint URL {url!r} has an invalid port; pass e.g. http://127.0.0.1:8000/v1"
        ) from None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = "/".join(p for p in parts.path.split("/") if p)
    return urlunsplit((scheme, netloc, f"/{path}" if path else "", "", ""))


def openai_identity(model: str, base_url: str | None, dimensions: int | None) -> str:
    """The cache identity of an ``openai:`` model: normalised endpoint, model name and requested dimensions."""
    return f"openai:{normalize_endpoint(base_url)}|{model}|{dimensions or 'native'}"

"""A workspace whose every vector is already cached, for a machine that has no base model.

The GPU machine can download nothing, and the bundled all-MiniLM-L6-v2 (90 MB) does not fit what travels to it. So
``python benchmarks/prepared.py OUT`` (here, on the CPU, with the bundled model) copies AppleQA into ``OUT``, embeds
its chunks and questions, and trains once with the default recipe so that the offline pseudo-queries are cached too;
it records the model's name, dimension and cache identity in ``OUT/prepared_model.json`` (about 10 MB in all).
There, :func:`load` gives that workspace and a :class:`CachedOnly` encoder: it answers from the cache under the
real model's identity and refuses to compute anything, so every vector the benchmarks read there is the real
model's, computed here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import DEFAULT_DATA, copy_workspace  # noqa: E402

MODEL_FILE = "prepared_model.json"


class CachedOnly:
    """An encoder that only reads the cache: the vectors ``identity`` (a real model's cache identity) made."""

    def __init__(self, name: str, dim: int, identity: str) -> None:
        self.name, self._dim, self.identity = name, dim, identity

    @property
    def dim(self) -> int:
        return self._dim

    def cache_identity(self, memo: MutableMapping[str, str] | None = None) -> str:
        return self.identity

    def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        raise RuntimeError(
            f"{len(texts)} {kind} texts are not in the prepared cache (first: {texts[0]!r}); prepare the workspace "
            "again with benchmarks/prepared.py and the same qadapter version"
        )


def prepare(data: Path, out: Path, model: str | None = None) -> Path:
    """AppleQA (``data/appleqa``) in ``out`` with every vector the default train stage reads cached (``model``:
    the bundled model by default, on the CPU)."""
    from qadapter.core.defaults import DEFAULT_MODEL
    from qadapter.embedding import embed_workspace
    from qadapter.encoders import get_encoder
    from qadapter.encoders.encode import model_identity
    from qadapter.train import train

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # a writable copy, then in place
        copy_workspace(data, "appleqa", Path(tmp)).rename(out)
    encoder = get_encoder(model or DEFAULT_MODEL, device="cpu")
    embed_workspace(out, ["test"], model=encoder)  # the test questions; train embeds the rest
    with (
        tempfile.TemporaryDirectory() as tmp
    ):  # the training questions and the offline pseudo-queries it adds
        train(out, output=Path(tmp) / "adapter", model=encoder, device="cpu")
    record = {"name": encoder.name, "dim": encoder.dim, "identity": model_identity(encoder)}
    (out / MODEL_FILE).write_text(json.dumps(record), encoding="utf-8")
    return out


def load(path: Path) -> tuple[Path, CachedOnly]:
    """The prepared workspace and its cache-only encoder."""
    record: dict[str, Any] = json.loads((path / MODEL_FILE).read_text(encoding="utf-8"))
    return path, CachedOnly(record["name"], int(record["dim"]), record["identity"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (replaced if it exists)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default=None, help="base model (default: the bundled all-MiniLM-L6-v2)")
    args = parser.parse_args()
    prepare(args.data, args.out, args.model)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"prepared {args.out} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()

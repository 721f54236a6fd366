"""Export to a Sentence Transformers folder and reload it with sentence-transformers alone."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qadapter.adapters import Adapter, save_adapter
from qadapter.errors import QadapterError
from qadapter.integrations.sentence_transformers import adapter_as_affine, export_sentence_transformers

TEXTS = ["how do rivers carve valleys?", "Paris is the capital of France.", "binary search on a sorted list"]


def _config(dim: int) -> dict:
    return {"base_model": {"name": "all-MiniLM-L6-v2", "dim": dim}}


def make_adapter(kind: str, dim: int = 384, seed: int = 0) -> Adapter:
    rng = np.random.default_rng(seed)
    if kind == "identity":
        return Adapter.identity(dim, _config(dim))
    if kind == "linear":
        tensors = {
            "weight": np.eye(dim) + 0.05 * rng.normal(size=(dim, dim)),
            "bias": 0.01 * rng.normal(size=dim),
        }
    elif kind == "lowrank":
        tensors = {
            "down": 0.1 * rng.normal(size=(8, dim)),
            "up": 0.1 * rng.normal(size=(dim, 8)),
            "bias": 0.01 * rng.normal(size=dim),
        }
    else:
        tensors = {
            "w1": rng.normal(size=(8, dim)),
            "b1": np.zeros(8),
            "w2": rng.normal(size=(dim, 8)),
            "b2": np.zeros(dim),
        }
    return Adapter(kind, dim, tensors, _config(dim))


@pytest.mark.parametrize("kind", ["identity", "linear", "lowrank"])
def test_affine_form_reproduces_transform(kind: str) -> None:
    adapter = make_adapter(kind, dim=12)
    x = np.random.default_rng(1).normal(size=(5, 12)).astype(np.float32)
    affine = adapter_as_affine(adapter)
    expected = x if affine is None else x @ affine[0].T + affine[1]
    np.testing.assert_allclose(adapter.transform(x), expected, atol=1e-5)


def test_mlp_is_refused_with_the_exportable_kinds(tmp_path) -> None:
    with pytest.raises(QadapterError, match="exportable kinds: identity, linear, lowrank"):
        export_sentence_transformers(make_adapter("mlp"), tmp_path / "out", encoder="all-MiniLM-L6-v2")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def encoder():
    from qadapter.encoders import get_encoder

    return get_encoder()


def _check_folder(path, adapter: Adapter, encoder) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    base_queries = encoder.encode(TEXTS, kind="query")
    base_documents = encoder.encode(TEXTS, kind="document")
    np.testing.assert_allclose(model.encode_query(TEXTS), adapter.transform(base_queries), atol=1e-5)
    np.testing.assert_allclose(model.encode_document(TEXTS), base_documents, atol=1e-6)
    np.testing.assert_allclose(model.encode(TEXTS), base_documents, atol=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["identity", "lowrank"])
def test_export_reloads_with_sentence_transformers(tmp_path, encoder, kind: str) -> None:
    adapter = make_adapter(kind)
    out = export_sentence_transformers(adapter, tmp_path / "st", encoder=encoder)
    _check_folder(out, adapter, encoder)
    # The base transformer is saved once and shared by both routes.
    assert len(list(out.rglob("model.safetensors"))) == (1 if kind == "identity" else 2)
    assert "encode_query" in (out / "README.md").read_text()


@pytest.mark.integration
def test_cli_export_in_a_subprocess(tmp_path, encoder) -> None:
    adapter = make_adapter("linear")
    save_adapter(adapter, tmp_path / "adapter")
    out = tmp_path / "st"
    cmd = [
        sys.executable,
        "-m",
        "qadapter",
        "export",
        str(tmp_path / "adapter"),
        "--to",
        "sentence-transformers",
    ]
    done = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "encode_query" in done.stdout
    _check_folder(out, adapter, encoder)

    again = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1].startswith("error: ") and "--overwrite" in again.stderr


def test_cli_export_rejects_unknown_target(tmp_path) -> None:
    from click.testing import CliRunner

    from qadapter.cli import cli

    result = CliRunner().invoke(cli, ["export", str(tmp_path), "--to", "onnx", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "sentence-transformers" in result.output

"""The adapter as numpy code and as a folder on disk.

The numpy ``transform`` must compute exactly what the torch module that trained it computes, every trainable kind
must start as the exact identity, and a saved folder must load back bit for bit. Loading must refuse anything that
is not a well-formed adapter for the embeddings at hand, with an :class:`ArtifactError` (one line for the CLI), never
a traceback; saving must be atomic and must not overwrite unless asked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from qadapter.adapters import FORMAT_NAME, FORMAT_VERSION, KINDS, Adapter, load_adapter, save_adapter
from qadapter.adapters.artifact import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from qadapter.data.atomic import atomic_dir
from qadapter.errors import ArtifactError, QadapterError

DIM, HIDDEN = 16, 8
TRAINABLE = ("linear", "lowrank", "mlp")


def random_adapter(kind: str, *, dim: int = DIM, hidden: int = HIDDEN, seed: int = 0) -> Adapter:
    """An adapter of ``kind`` with random (non-identity) tensors, recorded for a made-up base model."""
    rng = np.random.default_rng(seed)
    shapes = {
        "identity": {},
        "linear": {"weight": (dim, dim), "bias": (dim,)},
        "lowrank": {"down": (hidden, dim), "up": (dim, hidden), "bias": (dim,)},
        "mlp": {"w1": (hidden, dim), "b1": (hidden,), "w2": (dim, hidden), "b2": (dim,)},
    }[kind]
    tensors = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    config = {"base_model": {"name": "fake-model", "dim": dim}, "training": {"recipe": "test"}}
    return Adapter(kind, dim, tensors, config)


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    return save_adapter(random_adapter("linear"), tmp_path / "adapter")


# -- numpy transform vs the torch modules that train it -------------------------------------------------------------


@pytest.mark.parametrize("kind", TRAINABLE)
def test_numpy_transform_matches_torch_module(kind: str) -> None:
    torch = pytest.importorskip("torch")
    from qadapter.train.modules import build_module, to_adapter

    torch.manual_seed(0)
    module = build_module(kind, DIM, hidden=HIDDEN, init="random")
    with torch.no_grad():  # move every parameter away from its (partly zero) start so each term matters
        for param in module.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    adapter = to_adapter(module, kind, DIM)
    assert set(adapter.tensors) == {name for name, _ in module.named_parameters()}

    x = np.random.default_rng(1).normal(size=(20, DIM)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    got = adapter.transform(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, x, atol=1e-3)  # the comparison is not trivially the identity
    # one vector in, one vector out
    np.testing.assert_allclose(adapter.transform(x[3]), expected[3], rtol=1e-5, atol=1e-5)


def test_numpy_gelu_is_torch_tanh_gelu() -> None:
    torch = pytest.importorskip("torch")
    from qadapter.adapters.adapter import gelu_tanh

    x = np.linspace(-6, 6, 101, dtype=np.float32)
    expected = torch.nn.GELU(approximate="tanh")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(gelu_tanh(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", TRAINABLE)
def test_identity_init_is_exactly_the_identity(kind: str) -> None:
    torch = pytest.importorskip("torch")
    from qadapter.train.modules import build_module, to_adapter

    torch.manual_seed(0)
    module = build_module(kind, DIM, hidden=HIDDEN, init="identity")
    x = np.random.default_rng(2).normal(size=(10, DIM)).astype(np.float32)
    with torch.no_grad():
        assert torch.equal(module(torch.from_numpy(x)), torch.from_numpy(x))
    np.testing.assert_array_equal(to_adapter(module, kind, DIM).transform(x), x)


def test_identity_adapter_returns_a_copy() -> None:
    x = np.random.default_rng(3).normal(size=(4, DIM)).astype(np.float32)
    adapter = Adapter.identity(DIM)
    y = adapter.transform(x)
    np.testing.assert_array_equal(y, x)
    y[0, 0] = 42.0
    assert x[0, 0] != 42.0
    assert adapter.is_identity() and adapter.n_parameters == 0 and adapter.hidden == 0


def test_transform_rejects_the_wrong_dimension() -> None:
    adapter = random_adapter("linear")
    with pytest.raises(QadapterError, match=r"dimension 16 \(base model fake-model\).*shape \(3, 8\)"):
        adapter.transform(np.zeros((3, 8), dtype=np.float32))


@pytest.mark.parametrize(
    ("kind", "tensors", "match"),
    [
        ("conv", {}, "unknown adapter kind 'conv'; valid kinds: identity, linear, lowrank, mlp"),
        ("linear", {"weight": np.eye(DIM)}, r"missing \['bias'\]"),
        ("linear", {"weight": np.eye(DIM), "bias": np.zeros(DIM), "x": np.zeros(1)}, r"unexpected \['x'\]"),
        ("linear", {"weight": np.eye(DIM + 1), "bias": np.zeros(DIM)}, "inconsistent with d=16"),
        ("linear", {"weight": np.zeros(DIM), "bias": np.zeros(DIM)}, "expected 2 dimensions"),
        (
            "lowrank",
            {"down": np.zeros((4, DIM)), "up": np.zeros((DIM, 5)), "bias": np.zeros(DIM)},
            "inconsistent with h=4",
        ),
    ],
)
def test_adapter_checks_kind_and_tensor_shapes(kind: str, tensors: dict, match: str) -> None:
    with pytest.raises(ArtifactError, match=match):
        Adapter(kind, DIM, tensors)


# -- save / load -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind: str, tmp_path: Path) -> None:
    adapter = random_adapter(kind)
    path = save_adapter(adapter, tmp_path / kind)
    assert sorted(p.name for p in path.iterdir()) == sorted([CARD_FILE, CONFIG_FILE, WEIGHTS_FILE])

    loaded = load_adapter(path, expected_dim=DIM, expected_model="fake-model")
    assert loaded.kind == kind and loaded.dim == DIM
    assert sorted(loaded.tensors) == sorted(adapter.tensors)
    for name, value in adapter.tensors.items():
        np.testing.assert_array_equal(loaded.tensors[name], value)
    x = np.random.default_rng(4).normal(size=(5, DIM)).astype(np.float32)
    np.testing.assert_array_equal(loaded.transform(x), adapter.transform(x))

    config = json.loads((path / CONFIG_FILE).read_text())
    assert config["format"] == FORMAT_NAME and config["format_version"] == FORMAT_VERSION
    assert config["qadapter_version"]
    assert config["kind"] == kind and config["dim"] == DIM
    assert config["n_parameters"] == adapter.n_parameters
    assert config["base_model"] == {"name": "fake-model", "dim": DIM}
    assert config["training"] == {"recipe": "test"}
    assert loaded.base_model == "fake-model"
    card = (path / CARD_FILE).read_text()
    assert f"**{kind}** adapter" in card and "`fake-model`" in card
    assert ("This adapter is the identity" in card) == (kind == "identity")


def test_save_stores_numpy_values_and_extra_files(tmp_path: Path) -> None:
    adapter = random_adapter("linear")
    adapter.config["metrics"] = {
        "split": "test",
        "n_queries": np.int64(7),
        "baseline": {"hit@10": np.float32(0.5)},
        "adapted": {"hit@10": 0.75},
    }
    path = save_adapter(
        adapter, tmp_path / "a", extra_files={"report/notes.md": "hello", "raw.bin": b"\x00\x01"}
    )
    config = json.loads((path / CONFIG_FILE).read_text())
    assert config["metrics"]["n_queries"] == 7 and config["metrics"]["baseline"]["hit@10"] == 0.5
    assert (path / "report" / "notes.md").read_text() == "hello"
    assert (path / "raw.bin").read_bytes() == b"\x00\x01"
    assert "| hit@10 | 0.5000 | 0.7500 | +0.2500 |" in (path / CARD_FILE).read_text()


def test_saving_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = save_adapter(random_adapter("linear", seed=1), tmp_path / "a")
    before = (path / WEIGHTS_FILE).read_bytes()
    with pytest.raises(ArtifactError, match="already exists.*overwrite"):
        save_adapter(random_adapter("mlp", seed=2), path)
    assert (path / WEIGHTS_FILE).read_bytes() == before

    save_adapter(random_adapter("mlp", seed=2), path, overwrite=True)
    assert load_adapter(path).kind == "mlp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temporary or backup folder left


def test_a_failure_mid_save_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qadapter.adapters.card as card

    def broken_card(*args: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(card, "model_card", broken_card)  # fails after the weights and config are written
    with pytest.raises(RuntimeError, match="disk full"):
        save_adapter(random_adapter("linear"), tmp_path / "a")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_adapter(tmp_path: Path) -> None:
    path = save_adapter(random_adapter("linear", seed=1), tmp_path / "a")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    bad = random_adapter("mlp")
    bad.config["not_json"] = object()
    with pytest.raises(TypeError, match="cannot store object"):
        save_adapter(bad, path, overwrite=True)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_atomic_dir_publishes_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "part.txt").write_text("half")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "part.txt").write_text("whole")
        assert not target.exists()
    assert (target / "part.txt").read_text() == "whole"


# -- loading checks ----------------------------------------------------------------------------------------------


def _edit_config(path: Path, **changes: object) -> None:
    config = json.loads((path / CONFIG_FILE).read_text())
    config.update(changes)
    (path / CONFIG_FILE).write_text(json.dumps(config))


def test_load_rejects_a_foreign_format(saved: Path) -> None:
    _edit_config(saved, format="peft.lora")
    with pytest.raises(ArtifactError, match=r"format is 'peft.lora', expected 'qadapter.adapter'"):
        load_adapter(saved)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, "1", None])
def test_load_rejects_an_unsupported_format_version(saved: Path, version: object) -> None:
    _edit_config(saved, format_version=version)
    with pytest.raises(ArtifactError, match=r"format_version .* is not supported .*upgrade qadapter"):
        load_adapter(saved)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"kind": "conv"}, "unknown adapter kind 'conv'"),
        ({"dim": 0}, "'dim' must be a positive integer"),
        ({"dim": "16"}, "'dim' must be a positive integer"),
    ],
)
def test_load_rejects_bad_config_values(saved: Path, changes: dict, match: str) -> None:
    _edit_config(saved, **changes)
    with pytest.raises(ArtifactError, match=match):
        load_adapter(saved)


def test_load_reports_a_missing_weights_file(saved: Path) -> None:
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match=f"missing {WEIGHTS_FILE}"):
        load_adapter(saved)


@pytest.mark.parametrize("cut", ["header", "data", "empty", "random"])
def test_load_reports_truncated_or_corrupt_weights(saved: Path, cut: str) -> None:
    weights = saved / WEIGHTS_FILE
    data = weights.read_bytes()
    damaged = {
        "header": data[:20],
        "data": data[:-100],  # header intact, tensor bytes cut short
        "empty": b"",
        "random": np.random.default_rng(5).bytes(len(data)),
    }[cut]
    weights.write_bytes(damaged)
    with pytest.raises(ArtifactError, match="corrupt or truncated"):
        load_adapter(saved)


def test_load_reports_a_tensor_shape_mismatch(saved: Path) -> None:
    from safetensors.numpy import save_file

    save_file(
        {"weight": np.eye(DIM + 2, dtype=np.float32), "bias": np.zeros(DIM, dtype=np.float32)},
        str(saved / WEIGHTS_FILE),
    )
    with pytest.raises(ArtifactError, match=r"tensor 'weight' has shape \(18, 18\)"):
        load_adapter(saved)


def test_load_reports_missing_tensors(saved: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"bias": np.zeros(DIM, dtype=np.float32)}, str(saved / WEIGHTS_FILE))
    with pytest.raises(ArtifactError, match=r"missing \['weight'\]"):
        load_adapter(saved)


def test_wrong_dimension_adapter_gives_a_clear_error(saved: Path) -> None:
    with pytest.raises(ArtifactError) as info:
        load_adapter(saved, expected_dim=384)
    message = str(info.value)
    assert "16-dimensional" in message and "dimension 384" in message and "fake-model" in message
    assert "\n" not in message


def test_wrong_base_model_gives_a_clear_error(saved: Path) -> None:
    with pytest.raises(ArtifactError, match="trained on base model 'fake-model', not 'all-MiniLM-L6-v2'"):
        load_adapter(saved, expected_model="all-MiniLM-L6-v2")
    assert load_adapter(saved, expected_model="fake-model").kind == "linear"


def test_load_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="adapter folder not found"):
        load_adapter(tmp_path / "nope")


def _garbage(path: Path, case: str) -> None:
    rng = np.random.default_rng(6)
    path.mkdir()
    if case in ("random-files", "random-files-and-weights"):
        for name in ("model.bin", "notes.txt", "data.json"):
            (path / name).write_bytes(rng.bytes(200))
        if case == "random-files-and-weights":
            (path / WEIGHTS_FILE).write_bytes(rng.bytes(200))
    elif case == "config-not-json":
        (path / CONFIG_FILE).write_text("{this is not json")
    elif case == "config-a-list":
        (path / CONFIG_FILE).write_text("[1, 2, 3]")
    elif case == "config-binary":
        (path / CONFIG_FILE).write_bytes(rng.bytes(200))
    elif case == "config-only":
        (path / CONFIG_FILE).write_text(json.dumps({"format": FORMAT_NAME, "format_version": 1}))


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "random-files",
        "random-files-and-weights",
        "config-not-json",
        "config-a-list",
        "config-only",
        "config-binary",
    ],
)
def test_garbage_folder_gives_an_artifact_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "garbage"
    _garbage(path, case)
    with pytest.raises(ArtifactError) as info:
        load_adapter(path)
    assert str(path) in str(info.value)


def test_saved_files_have_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        path = save_adapter(random_adapter("linear"), tmp_path / "a")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: other users and services can read it

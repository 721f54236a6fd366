"""Contract test over every registered adapter kind, picked up from the registry by itself.

For each kind: save/load round trip, the torch module that trains it computes what the numpy adapter computes, its
identity start is exactly the identity, and the Sentence Transformers export rule either reproduces the map as one
affine layer or refuses with a one-line error naming the exportable kinds. A last test adds a kind the way a
contributor would (one module's worth of definitions + one registry entry) and checks that nothing else is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qadapter.adapters import Adapter, load_adapter, save_adapter
from qadapter.adapters.kinds import EXPORTABLE_KINDS, REGISTRY, TRAINABLE_KINDS, AdapterKind, Affine, Ops
from qadapter.errors import QadapterError

DIM, HIDDEN = 12, 5


def random_tensors(kind: AdapterKind, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {"d": DIM, "h": HIDDEN}
    return {name: 0.5 * rng.normal(size=[sizes[s] for s in dims]) for name, dims in kind.tensors.items()}


def queries(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(9, DIM)).astype(np.float32)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_kind_round_trips_through_save_and_load(name: str, tmp_path: Path) -> None:
    adapter = Adapter(name, DIM, random_tensors(REGISTRY[name]), {"base_model": {"name": "m", "dim": DIM}})
    loaded = load_adapter(save_adapter(adapter, tmp_path / name), expected_dim=DIM, expected_model="m")
    assert loaded.kind == name
    np.testing.assert_array_equal(loaded.transform(queries()), adapter.transform(queries()))


@pytest.mark.parametrize("name", TRAINABLE_KINDS)
def test_every_trainable_kind_trains_what_numpy_applies(name: str) -> None:
    torch = pytest.importorskip("torch")
    from qadapter.train.modules import build_module, to_adapter

    torch.manual_seed(0)
    module = build_module(name, DIM, hidden=HIDDEN)
    x = queries()
    with torch.no_grad():
        assert torch.equal(module(torch.from_numpy(x)), torch.from_numpy(x)), "identity start"
        for param in module.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
        expected = module(torch.from_numpy(x)).numpy()
    adapter = to_adapter(module, name, DIM)
    assert not np.allclose(expected, x, atol=1e-3)
    np.testing.assert_allclose(adapter.transform(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_kind_exports_exactly_or_is_refused_in_one_line(name: str) -> None:
    from qadapter.integrations.sentence_transformers import adapter_as_affine

    adapter = Adapter(name, DIM, random_tensors(REGISTRY[name]))
    x = queries()
    if name not in EXPORTABLE_KINDS:
        with pytest.raises(QadapterError) as info:
            adapter_as_affine(adapter)
        message = str(info.value)
        assert f"a '{name}' adapter cannot be exported" in message and "\n" not in message
        assert f"exportable kinds: {', '.join(EXPORTABLE_KINDS)}" in message
        return
    affine = adapter_as_affine(adapter)
    expected = x.astype(np.float64) if affine is None else x @ affine[0].T + affine[1]
    np.testing.assert_allclose(adapter.transform(x), expected, rtol=1e-5, atol=1e-5)


def test_cli_and_config_read_the_registry() -> None:
    from qadapter.cli.train import train_command
    from qadapter.train.config import TrainConfig

    kind_option = next(p for p in train_command.params if p.name == "kind")
    assert list(kind_option.type.choices) == list(TRAINABLE_KINDS) == [k for k in REGISTRY if k != "identity"]
    for name in TRAINABLE_KINDS:
        assert TrainConfig(kind=name).kind == name


# -- adding a kind: one module (below) + one registry entry --------------------------------------------------------


def _scale_apply(t: Mapping[str, Any], x: Any, ops: Ops) -> Any:
    return x * t["scale"] + t["bias"]


def _scale_init(dim: int, hidden: int, how: str) -> dict[str, Any]:
    import torch

    return {"scale": torch.ones(dim), "bias": torch.zeros(dim)}


def _scale_affine(t: Mapping[str, np.ndarray], dim: int) -> Affine | None:
    return np.diag(t["scale"].astype(np.float64)), t["bias"].astype(np.float64)


SCALE = AdapterKind(
    name="scale",
    tensors={"scale": ("d",), "bias": ("d",)},
    apply=_scale_apply,
    summary="a per-dimension scale y = s * x + b",
    init=_scale_init,
    affine=_scale_affine,
)


def test_a_new_kind_needs_only_its_module_and_a_registry_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    from qadapter.integrations.sentence_transformers import adapter_as_affine
    from qadapter.train.modules import build_module, to_adapter

    monkeypatch.setitem(REGISTRY, "scale", SCALE)
    module = build_module("scale", DIM)
    with torch.no_grad():
        module.scale.mul_(2.0)  # type: ignore[operator]
    adapter = to_adapter(module, "scale", DIM)
    x = queries()
    np.testing.assert_allclose(adapter.transform(x), 2 * x, rtol=1e-6)
    loaded = load_adapter(save_adapter(adapter, tmp_path / "scale"))
    np.testing.assert_allclose(loaded.transform(x), 2 * x, rtol=1e-6)
    weight, bias = adapter_as_affine(adapter)  # type: ignore[misc]
    np.testing.assert_allclose(x @ weight.T + bias, 2 * x, rtol=1e-6)

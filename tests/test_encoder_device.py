"""``--device auto|cpu|cuda|mps`` reaches the model, and the CPU thread count follows the machine (issue 12)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from qadapter.core.device import DEVICES, resolve_device
from qadapter.data import Document, Query, Workspace
from qadapter.encoders import get_encoder
from qadapter.errors import QadapterError

sys.path.insert(0, str(Path(__file__).parent))
from tiny_st_model import build_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("m") / "model", seed=3)


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_the_model_is_loaded_on_the_resolved_device(tiny: Path, device: str) -> None:
    encoder = get_encoder(str(tiny), device=device)
    assert encoder.device == resolve_device(device)  # type: ignore[attr-defined]
    assert str(encoder.model.device).split(":")[0] == resolve_device(device).split(":")[0]  # type: ignore[attr-defined]


def test_an_unavailable_gpu_is_an_error_not_a_silent_cpu(tiny: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    encoder = get_encoder(str(tiny), device="cuda")
    with pytest.raises(QadapterError, match="sees no CUDA GPU; use --device cpu or auto"):
        encoder.encode(["solar"])


def test_cpu_threads_come_from_the_machine(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("QADAPTER_THREADS", "1")
    try:
        get_encoder(str(tiny), device="cpu").encode(["solar"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_embed_command_takes_device_choices_from_the_registry(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qadapter.cli import main

    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document("d1", "river city"), Document("d2", "solar panel")])
    ws.write_queries([Query("q1", "what river")])
    ws.write_qrels("test", {"q1": {"d1": 1}})
    with pytest.raises(SystemExit) as bad:
        main(["embed", str(ws.path), "--model", str(tiny), "--device", "tpu"])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and all(d in err for d in DEVICES)
    main(["embed", str(ws.path), "--model", str(tiny), "--device", "cpu", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["device"] == "cpu" and summary["documents"] == 2

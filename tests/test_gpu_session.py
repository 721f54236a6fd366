"""The GPU checks' scripts (benchmarks/gpu_session.sh) run anywhere: a prepared workspace answers every vector from
its cache without the model, and bench_gpu.py's stages run on the CPU at small sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_st_model import WORDS, build_tiny_model

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _beir(folder: Path, n_docs: int = 24) -> None:
    """A workspace (a BEIR folder) of ``n_docs`` chunks, two training questions and one test question per chunk
    (tiny vocabulary)."""
    import random

    from qadapter.data import Document, Query, Workspace

    rng = random.Random(3)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    ws = Workspace(folder)
    ws.write_corpus(Document(f"c{d}", words(12)) for d in range(n_docs))
    ws.write_queries(Query(f"q{d}_{j}", words(5)) for d in range(n_docs) for j in range(3))
    for split, ids in (("train", (0, 1)), ("test", (2,))):
        ws.write_qrels(split, {f"q{d}_{j}": {f"c{d}": 1} for d in range(n_docs) for j in ids})


@pytest.fixture(scope="module")
def prepared_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    sys.path.insert(0, str(BENCHMARKS))
    import prepared

    root = tmp_path_factory.mktemp("gpu")
    model = build_tiny_model(root / "model", seed=2)
    _beir(root / "data" / "appleqa")
    return prepared.prepare(root / "data", root / "prepared", model=str(model)), model


def test_a_prepared_workspace_trains_from_its_cache_alone(
    prepared_ws: tuple[Path, Path], tmp_path: Path
) -> None:
    import prepared

    from qadapter.encoders import get_encoder, model_identity
    from qadapter.train import train

    path, model = prepared_ws
    ws, encoder = prepared.load(path)
    assert encoder.identity == model_identity(get_encoder(str(model))) and encoder.dim == 16
    with pytest.raises(RuntimeError, match="not in the prepared cache"):
        encoder.encode(["river city"], kind="query")
    result = train(
        ws, output=tmp_path / "adapter", model=encoder, device="cpu"
    )  # encodes nothing, or it raises
    assert (tmp_path / "adapter" / "adapter.safetensors").is_file() and result.chosen


def test_gpu_benchmark_runs_on_the_cpu_with_small_sizes(
    prepared_ws: tuple[Path, Path], tmp_path: Path
) -> None:
    """benchmarks/bench_gpu.py is meant for a GPU machine; its --device cpu --small path proves it runs."""
    cmd = [
        sys.executable,
        str(BENCHMARKS / "bench_gpu.py"),
        "--device",
        "cpu",
        "--small",
        "--out",
        str(tmp_path),
    ]
    subprocess.run([*cmd, "--appleqa", str(prepared_ws[0])], check=True, capture_output=True, timeout=600)
    stages = json.loads((tmp_path / "gpu.json").read_text())["stages"]
    assert set(stages) == {
        "encode",
        "appleqa_default",
        "evaluate",
        "single_fit",
        "single_fit_bfloat16",
        "train_default",
    }
    assert stages["appleqa_default"]["device"] == "cpu" and stages["appleqa_default"]["chosen"]
    assert stages["single_fit"]["hit@10"] > stages["evaluate"]["base"]["hit@10"]
    assert stages["single_fit_bfloat16"]["hit@10"] > stages["evaluate"]["base"]["hit@10"]

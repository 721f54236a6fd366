"""The light core: ``pip install qadapter`` (numpy, safetensors, click, tqdm) loads and applies an adapter, and every
heavier job names the extra it needs instead of failing with a bare ImportError.

CI runs this file twice: in the full test environment and in a fresh venv with no extras (``.ci/run``). Missing
packages are simulated by blocking their import, so the same assertions hold in both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qadapter import Adapter, load_adapter, save_adapter


def test_core_saves_loads_and_applies_an_adapter(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(8, 8)).astype(np.float32)
    tensors = {"weight": weight, "bias": np.zeros(8, np.float32)}
    adapter = Adapter("linear", 8, tensors, {"base_model": {"name": "m", "dim": 8}})
    save_adapter(adapter, tmp_path / "a")
    loaded = load_adapter(tmp_path / "a")
    x = rng.normal(size=(3, 8)).astype(np.float32)
    np.testing.assert_allclose(loaded.transform(x), x @ weight.T, rtol=1e-5, atol=1e-6)


def _run_blocked(blocked: list[str], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in which importing any of ``blocked`` fails as if it were not installed."""
    prelude = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120)


def _workspace(path: Path) -> Path:
    (path / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": f"document {i}"} for i in range(4)]
    queries = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(4)]
    (path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    rows = "".join(f"q{i}\td{i}\t1\n" for i in range(4))
    (path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return path


@pytest.mark.parametrize(
    ("blocked", "command", "extra"),
    [
        (["torch", "sentence_transformers"], ["train", "{ws}", "-o", "{out}"], "train"),
        (["fastapi", "uvicorn"], ["serve", "{adapter}"], "serve"),
    ],
)
def test_cli_names_the_extra_a_command_needs(
    tmp_path: Path, blocked: list[str], command: list[str], extra: str
) -> None:
    ws = _workspace(tmp_path / "ws")
    adapter = save_adapter(
        Adapter.identity(384, {"base_model": {"name": "all-MiniLM-L6-v2", "dim": 384}}), tmp_path / "ad"
    )
    args = [a.format(ws=ws, out=tmp_path / "out", adapter=adapter) for a in command]
    result = _run_blocked(blocked, f"from qadapter.cli import main\nmain({args!r})")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"pip install 'qadapter[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_applying_an_adapter_imports_no_heavy_package(tmp_path: Path) -> None:
    save_adapter(Adapter.identity(4, {"base_model": {"name": "m", "dim": 4}}), tmp_path / "a")
    heavy = ["torch", "sentence_transformers", "chromadb", "matplotlib", "scipy", "openai", "fastapi"]
    code = (
        "import numpy as np, qadapter\n"
        f"a = qadapter.load_adapter({str(tmp_path / 'a')!r})\n"
        "print(a.transform(np.ones((1, 4), dtype=np.float32)).shape)\n"
    )
    result = _run_blocked(heavy, code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 4)"


@pytest.mark.parametrize(
    ("blocked", "code", "extra"),
    [
        (["torch"], "from qadapter.train import train", "train"),
        (["torch"], "import qadapter; qadapter.train", "train"),
        (["matplotlib"], "from qadapter.report.charts import training_figure; training_figure({})", "report"),
    ],
)
def test_the_python_api_names_the_extra_a_job_needs(blocked: list[str], code: str, extra: str) -> None:
    result = _run_blocked(blocked, code)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qadapter.errors.MissingExtraError") and f"pip install 'qadapter[{extra}]'" in last

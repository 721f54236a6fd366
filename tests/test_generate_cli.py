"""``qadapter generate`` through the real entry point, including a kill of the generator and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_llm_server import FakeLLMServer
from test_generate_server import make_workspace

from qadapter.cli import cli, main
from qadapter.data import Workspace


def test_offline_generation_needs_no_server(tmp_path) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 3)
    result = CliRunner().invoke(cli, ["generate", str(tmp_path), "--offline", "--per-chunk", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["generator"] == "offline" and summary["queries_added"] == 6
    queries = ws.queries()
    assert {q.metadata["generator"] for q in queries.values()} == {"offline"}
    assert set(ws.qrels("generated")) == set(queries)


def test_missing_model_is_one_clear_error(tmp_path, capsys) -> None:  # noqa: ANN001
    make_workspace(tmp_path, 1)
    with pytest.raises(SystemExit) as exc:
        main(["generate", str(tmp_path)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: no model given; pass --model NAME")


def test_dry_run_prints_the_request_and_an_estimate(tmp_path) -> None:  # noqa: ANN001
    make_workspace(tmp_path, 2)
    args = ["generate", str(tmp_path), "--model", "m", "--llm-base-url", "http://127.0.0.1:9/v1", "--dry-run"]
    result = CliRunner().invoke(cli, [*args, "--price-input", "0.15", "--price-output", "0.6"])
    assert result.exit_code == 0, result.output
    assert (
        "2 of 2 chunks to request" in result.output and "~$" in result.output and "CHUNK-d0" in result.output
    )


def test_config_file_is_overridden_by_flags(tmp_path) -> None:  # noqa: ANN001
    make_workspace(tmp_path / "ws", 2)
    config = tmp_path / "gen.toml"
    config.write_text('[generate]\nmodel = "from-file"\nper_chunk = 3\n')
    args = ["generate", str(tmp_path / "ws"), "--config", str(config), "--dry-run", "--json"]
    summary = json.loads(CliRunner().invoke(cli, [*args, "--per-chunk", "4"]).stdout)
    assert summary["model"] == "from-file" and summary["estimate"]["completion_tokens"] == 2 * 4 * 30
    config.write_text('[generate]\nmodel = "m"\nper_chunks = 3\n')
    result = CliRunner().invoke(cli, args)
    assert "per_chunks" in str(result.exception) and "valid settings" in str(result.exception)


def test_failed_chunks_exit_nonzero_after_saving_the_rest(tmp_path) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path / "ws", 3)
    config = tmp_path / "fast.toml"
    config.write_text("backoff_base = 0.01\nbackoff_max = 0.02\n")  # settings without a flag; top-level keys
    with FakeLLMServer() as srv:
        srv.script("d1", ["503"] * 2)
        args = [
            "generate",
            str(tmp_path / "ws"),
            "--model",
            "m",
            "--llm-base-url",
            srv.url,
            "--max-retries",
            "1",
        ]
        result = CliRunner().invoke(cli, [*args, "--no-dedup", "--no-progress", "--config", str(config)])
    assert "1 of 3 chunks failed (first: d1" in str(result.exception)
    assert {q.metadata["doc_id"] for q in ws.queries().values()} == {"d0", "d2"}


def _journal_lines(ws: Path) -> int:
    files = list((ws / ".qadapter" / "generate").glob("*.jsonl"))
    return sum(1 for line in files[0].read_text().splitlines() if line.strip()) if files else 0


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_kill_mid_run_then_resume_requests_each_chunk_once(tmp_path, sig) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 10)
    with FakeLLMServer() as srv:
        # two workers: d0-d3 are answered, then d4 and d5 hang until the generator is killed
        srv.script("d4", ["hang"])
        srv.script("d5", ["hang"])
        cmd = [
            sys.executable,
            "-m",
            "qadapter",
            "generate",
            str(tmp_path),
            "--model",
            "m",
            "--llm-base-url",
            srv.url,
        ]
        cmd += ["--concurrency", "2", "--per-chunk", "5", "--no-dedup", "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (_journal_lines(tmp_path) == 4 and srv.in_flight == 2):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the generator never reached the hanging chunks"
            time.sleep(0.05)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=20)
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and b"re-run the same command to continue" in err
        assert not ws.queries_path.exists()  # nothing collected: the journal is the only record
        first = srv.requested()
        assert first == {f"d{i}": 1 for i in range(6)}
        srv.reset_records()

        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        second = srv.requested()
    # only what had no answer is asked again: the two in flight at the kill and the four never asked
    assert second == {f"d{i}": 1 for i in range(4, 10)}
    queries = ws.queries()
    assert len(queries) == 50 and len({(q.metadata["doc_id"], q.text) for q in queries.values()}) == 50
    assert _journal_lines(tmp_path) == 10
    assert "6 chunks answered now, 4 earlier" in done.stdout


APPLEQA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "appleqa"


@pytest.mark.skipif(not APPLEQA.is_dir(), reason="../shared/data/appleqa is not present")
def test_offline_on_appleqa_training_chunks_only(tmp_path) -> None:  # noqa: ANN001
    import shutil

    shutil.copy(APPLEQA / "corpus.jsonl", tmp_path / "corpus.jsonl")
    shutil.copy(APPLEQA / "queries.jsonl", tmp_path / "queries.jsonl")
    shutil.copytree(APPLEQA / "qrels", tmp_path / "qrels")
    args = ["generate", str(tmp_path), "--offline", "--per-chunk", "5", "--documents-from", "train-docsplit"]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    ws = Workspace(tmp_path)
    test_docs = {d for judged in ws.qrels("test-docsplit").values() for d in judged}
    generated = ws.qrels("generated")
    generated_docs = {d for judged in generated.values() for d in judged}
    assert generated_docs and not generated_docs & test_docs
    assert len(generated_docs) == 215 - len(test_docs)
    queries = ws.queries()
    assert len(queries) == 4300 + len(generated)  # the existing queries are kept
    assert all(queries[qid].metadata["generator"] == "offline" for qid in generated)

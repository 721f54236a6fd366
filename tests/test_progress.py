"""Progress off a terminal: plain log lines at a steady interval, so a CI log or a pipe never goes silent."""

from __future__ import annotations

import logging

import pytest

from qadapter.core.progress import LineProgress, progress


def test_line_progress_logs_counts_share_and_rate(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qadapter.progress")
    with LineProgress(total=200, desc="embedding queries", unit="text", interval=0.0) as bar:
        bar.update(50)
        bar.update(150)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("embedding queries: 50/200 texts (25%")
    assert lines[1].startswith("embedding queries: 200/200 texts (100%")
    assert lines[-1].startswith("embedding queries: done, 200 texts in")


def test_line_progress_is_quiet_between_intervals(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qadapter.progress")
    with LineProgress(total=10, desc="training", unit="epoch", interval=3600.0) as bar:
        for _ in range(10):
            bar.update()
    assert caplog.records == []  # finished well within one interval: nothing to say


def test_progress_off_a_terminal_is_lines_and_disabled_is_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QADAPTER_PROGRESS_INTERVAL", "0")
    caplog.set_level(logging.INFO, logger="qadapter.progress")
    bar = progress(3, "ingest", "file")  # pytest captures stderr: not a terminal
    assert isinstance(bar, LineProgress)
    bar.update(3)
    bar.close()
    off = progress(3, "ingest", "file", enabled=False)
    off.update(3)
    off.close()
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["ingest", "ingest"]


def test_a_command_whose_output_is_not_a_terminal_prints_progress_lines(tmp_path) -> None:  # noqa: ANN001
    """``qadapter embed`` in a pipe (CI logs, nohup) says what it is doing instead of going silent."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("sentence_transformers")
    ws = tmp_path / "ws"
    (ws / "qrels").mkdir(parents=True)
    docs = [
        {"_id": f"d{i}", "title": "", "text": f"document number {i} about topic {i % 7}"} for i in range(40)
    ]
    (ws / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (ws / "queries.jsonl").write_text(json.dumps({"_id": "q0", "text": "topic 3"}) + "\n")
    (ws / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td3\t1\n")
    env = {**os.environ, "QADAPTER_PROGRESS_INTERVAL": "0", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "qadapter", "embed", str(ws)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "qadapter.progress" in line]
    assert any("embedding documents: " in line and "/40 texts" in line for line in lines), done.stderr[-2000:]
    assert any("embedding documents: done, 40 texts" in line for line in lines)

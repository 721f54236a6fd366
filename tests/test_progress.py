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

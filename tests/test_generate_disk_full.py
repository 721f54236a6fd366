"""A full disk while generating is one clear line, and leaves nothing half-written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from test_generate_server import make_workspace

from qadapter.cli import main
from qadapter.data import atomic as atomic_module
from qadapter.errors import QadapterError
from qadapter.generate.journal import Journal

DEV_FULL = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
def test_a_full_disk_under_the_journal_keeps_its_message_through_close(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    path.symlink_to(DEV_FULL)  # the journal file now lives on a full disk
    with pytest.raises(QadapterError) as exc, journal:
        journal.append({"doc_id": "d1", "status": "ok", "questions": ["q"]})
    message = str(exc.value)
    assert "No space left on device" in message and "free some disk space and re-run" in message
    assert "\n" not in message and journal.records == []
    journal.close()  # nothing left open: closing again is harmless


@pytest.mark.skipif(not DEV_FULL.exists(), reason="needs /dev/full")
def test_closing_a_journal_on_a_full_disk_is_a_clear_error(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    path.symlink_to(DEV_FULL)
    monkeypatch.setattr(Journal, "append_many", _buffer_only)
    journal.append({"doc_id": "d1", "status": "ok", "questions": ["q"]})
    with pytest.raises(QadapterError, match="free some disk space"):
        journal.close()


def _buffer_only(self: Journal, records: list[dict]) -> None:
    """An append whose bytes are still in the file buffer when the journal is closed."""
    if self._handle is None:
        self._handle = self.path.open("ab")
    self._handle.write(b"{}\n")


def _files(ws: Path) -> dict[Path, bytes]:
    """Every file of the workspace with its bytes, but the lock file (it names the latest writer)."""
    return {p.relative_to(ws): p.read_bytes() for p in ws.rglob("*") if p.is_file() and p.name != "lock"}


def test_offline_generate_on_a_full_disk_is_one_line_and_changes_nothing(
    tmp_path, monkeypatch, capsys
) -> None:  # noqa: ANN001
    make_workspace(tmp_path, 4)
    assert main(["generate", str(tmp_path), "--offline", "--per-chunk", "2"]) in (0, None)
    before = _files(tmp_path)
    capsys.readouterr()
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the queries file is written; the disk fills up while writing the qrels
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(atomic_module.os, "fsync", fsync)
    with pytest.raises(SystemExit) as exc:
        main(["generate", str(tmp_path), "--offline", "--per-chunk", "3", "--split", "more"])
    monkeypatch.undo()
    assert exc.value.code == 2 and len(calls) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot write the queries into")
    assert "No space left on device" in err[0] and "nothing there was changed" in err[0]
    assert (
        _files(tmp_path) == before
    )  # no new split, the queries unchanged, no staged or temporary files left

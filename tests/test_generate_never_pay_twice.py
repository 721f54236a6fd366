"""Never pay twice: a real local chat server counts the requests per chunk across re-runs that differ in how the
endpoint is written, where it comes from (flag or environment), throughput settings, a kill -9, and a second
concurrent run into the same workspace."""

from __future__ import annotations

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

from qadapter.cli import cli
from qadapter.data import Document, Workspace
from qadapter.data.lock import WorkspaceLocked
from qadapter.generate import generate
from qadapter.generate.endpoint import normalize_base_url

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 5.0, "dedup_threshold": None, "per_chunk": 5}


def _spellings(url: str) -> list[str]:
    """The same endpoint written four ways: as served, with a trailing '/', as localhost, in upper case."""
    port = url.split(":")[2].split("/")[0]
    return [url, url + "/", f"http://localhost:{port}/v1", f"HTTP://LOCALHOST:{port}/v1/"]


def test_normalized_endpoint_is_one_spelling() -> None:
    same = [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1/",
        "HTTP://LocalHost:8000/v1",
        "http://[::1]:8000/v1",
    ]
    assert {normalize_base_url(u) for u in same} == {"http://127.0.0.1:8000/v1"}
    assert normalize_base_url("https://api.example.com:443/v1/") == "https://api.example.com/v1"
    assert normalize_base_url("http://example.com:80/v1") == "http://example.com/v1"
    assert normalize_base_url("http://example.com:8080/v1") == "http://example.com:8080/v1"
    assert normalize_base_url(None) == "https://api.openai.com/v1"


def test_url_spellings_env_and_flag_and_throughput_settings_never_pay_twice(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 10)
    with FakeLLMServer() as server:
        urls = _spellings(server.url)
        for limit, url in zip((3, 5, 7, 8), urls, strict=True):  # each spelling adds a few chunks
            generate(ws, model="m", llm_base_url=url, limit=limit, concurrency=limit, **FAST)
        # the endpoint from OPENAI_BASE_URL instead of a flag, other limits and temperature: only the rest is asked
        monkeypatch.setenv("OPENAI_BASE_URL", urls[1])
        summary = generate(ws, model="m", rpm=6000, temperature=0.2, max_retries=1, **FAST)
        assert (summary.already_done, summary.requested) == (8, 2)
        monkeypatch.delenv("OPENAI_BASE_URL")
        # and through the CLI, with the flag and with QADAPTER_LLM_BASE_URL: nothing left to pay for
        args = ["generate", str(tmp_path), "--model", "m", "--no-dedup", "--no-progress"]
        flag = CliRunner().invoke(cli, [*args, "--llm-base-url", urls[3]])
        assert flag.exit_code == 0, flag.output
        env = CliRunner().invoke(cli, args, env={"QADAPTER_LLM_BASE_URL": urls[2]})
        assert env.exit_code == 0, env.output
        assert "0 chunks answered now, 10 earlier" in env.output
        paid = server.requested()
    assert paid == {f"d{i}": 1 for i in range(10)}
    assert len(ws.queries()) == 50


def test_answers_are_reused_by_chunk_text_and_asked_again_when_it_changes(tmp_path) -> None:  # noqa: ANN001
    ws = Workspace(tmp_path)
    text = "CHUNK-{} Section about calibrating the widget before cleaning it."
    ws.write_corpus(
        [Document("a", text.format("a")), Document("b", text.format("b")), Document("c", text.format("a"))]
    )
    with FakeLLMServer() as server:
        first = generate(ws, model="m", llm_base_url=server.url, **FAST)
        assert (first.requested, first.chunks) == (2, 3)  # "a" and "c" are the same chunk: asked once
        assert server.requested() == {"a": 1, "b": 1}
        ws.write_corpus([Document("a", text.format("a")), Document("b", text.format("a2"))])
        second = generate(ws, model="m", llm_base_url=server.url, **FAST)
        assert second.requested == 1 and server.requested() == {"a": 1, "b": 1, "a2": 1}
        # another model or another prompt is another question: asked again
        third = generate(ws, model="other", llm_base_url=server.url, **FAST)
        assert third.requested == 2
    assert {q.metadata["doc_id"] for q in ws.queries().values()} == {"a", "b", "c"}


def _cli(ws: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "qadapter", "generate", str(ws), "--model", "m", "--llm-base-url", url,
            "--per-chunk", "5", "--no-dedup", "--no-progress", *extra]  # fmt: skip


def _wait(condition, proc: subprocess.Popen, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _journal_lines(ws: Path) -> int:
    return sum(
        1
        for f in (ws / ".qadapter" / "generate").glob("*.jsonl")
        for line in f.read_text().splitlines()
        if line
    )


@pytest.mark.integration
def test_kill_9_then_resume_under_another_spelling_pays_only_the_chunks_in_flight(tmp_path) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 10)
    with FakeLLMServer() as server:
        server.script("d4", ["hang"])
        server.script("d5", ["hang"])
        proc = subprocess.Popen(_cli(tmp_path, server.url, "--concurrency", "2"), stderr=subprocess.PIPE)
        _wait(lambda: _journal_lines(tmp_path) == 4 and server.in_flight == 2, proc, "never reached d4/d5")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        assert server.requested() == {f"d{i}": 1 for i in range(6)}
        server.release()
        server.reset_records()
        resumed = _spellings(server.url)[3]
        done = subprocess.run(_cli(tmp_path, resumed), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        # only the two in flight at the kill and the four never asked
        assert server.requested() == {f"d{i}": 1 for i in range(4, 10)}
    assert "6 chunks answered now, 4 earlier" in done.stdout
    assert len(ws.queries()) == 50


@pytest.mark.integration
def test_a_concurrent_second_run_fails_at_once_and_pays_nothing(tmp_path) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 6)
    with FakeLLMServer() as server:
        server.script("d0", ["hang"])
        first = subprocess.Popen(_cli(tmp_path, server.url, "--concurrency", "1"), stderr=subprocess.PIPE)
        _wait(lambda: server.in_flight == 1, first, "the first run never asked")
        started = time.monotonic()
        second = subprocess.run(_cli(tmp_path, server.url + "/"), capture_output=True, text=True, timeout=60)
        assert time.monotonic() - started < 30
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and f"(pid {first.pid})" in lines[0]
        assert "generate" in lines[0]
        with pytest.raises(WorkspaceLocked, match=f"pid {first.pid}"):
            generate(ws, model="m", llm_base_url=server.url, **FAST)
        assert server.requested() == {"d0": 1}  # the second run asked nothing
        server.release()
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert server.requested() == {f"d{i}": 1 for i in range(6)}
        # once the first run is done, a re-run is free
        again = generate(ws, model="m", llm_base_url=server.url, **FAST)
        assert (again.requested, again.already_done) == (0, 6)
    assert len(ws.queries()) == 30


def _legacy_journal(ws: Workspace, per_chunk: int, docs: list[str]) -> None:
    """A journal as written before answers carried a request key: records by doc_id, settings beside it."""
    from qadapter.generate.journal import Journal, write_run_meta
    from qadapter.generate.prompts import load_prompt

    prompt = load_prompt("default")
    path = ws.state_dir / "generate" / "m-default-0123abcd.jsonl"
    config = {"model": "m", "base_url": "http://localhost:1/v1/", "per_chunk": per_chunk, "examples": None,
              "num_examples": 5, "seed": 0, "temperature": 0.7}  # fmt: skip
    prompt_meta = {
        "name": prompt.name,
        "version": prompt.version,
        "system": prompt.system,
        "user": prompt.user,
    }
    write_run_meta(path.with_suffix(".json"), {"config": config, "prompt": prompt_meta})
    with Journal(path) as journal:
        for doc_id in docs:
            questions = [f"legacy question {i} about {doc_id} widgets" for i in range(per_chunk)]
            journal.append({"doc_id": doc_id, "status": "ok", "questions": questions, "model": "m",
                            "prompt": prompt.name, "prompt_version": prompt.version, "usage": {}})  # fmt: skip


def test_answers_journaled_before_request_keys_are_reused_when_the_run_asked_the_same(tmp_path) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 4)
    _legacy_journal(ws, 5, ["d0", "d1"])
    _legacy_journal_other = tmp_path / "other"
    other = make_workspace(_legacy_journal_other, 4)
    _legacy_journal(other, 3, ["d0", "d1"])  # asked for 3 questions: not what a 5-question run asks
    with FakeLLMServer() as server:
        summary = generate(ws, model="m", llm_base_url=server.url, **FAST)
        assert (summary.already_done, summary.requested) == (2, 2)
        assert server.requested() == {"d2": 1, "d3": 1}
        assert "legacy question 0 about d0 widgets" in {q.text for q in ws.queries().values()}
        server.reset_records()
        mismatch = generate(other, model="m", llm_base_url=server.url, **FAST)
        assert mismatch.requested == 4 and server.requested() == {f"d{i}": 1 for i in range(4)}

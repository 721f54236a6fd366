"""Unit tests of the generation logic that needs no server: parsing, filters, limits, prompts, journal, merge."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from qadapter.data import Document, Query, Workspace
from qadapter.errors import QadapterError
from qadapter.generate.config import GenerateConfig
from qadapter.generate.filters import (
    clean_question,
    copy_ratio,
    dedup_by_embedding,
    filter_questions,
    near_duplicates,
)
from qadapter.generate.journal import Journal, Usage
from qadapter.generate.offline import offline_queries, split_sentences
from qadapter.generate.output import merge_queries
from qadapter.generate.parsing import MalformedAnswer, parse_questions
from qadapter.generate.prompts import DEFAULT, SEED, PromptTemplate, load_examples, load_prompt, pick_examples
from qadapter.generate.ratelimit import RateLimiter, TokenBucket


class WordEncoder:
    """Deterministic bag-of-words encoder: texts sharing most words get a high cosine similarity."""

    name = "fake-words"
    dim = 256

    def encode(self, texts, *, kind="query", batch_size=64):  # noqa: ANN001, ANN201
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace("?", "").split():
                out[i, sum(map(ord, word)) * 31 % self.dim] += 1.0
        return out


# -- parsing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        '{"questions": ["a b?", "c d?"]}',
        '```json\n{"questions": ["a b?", "c d?"]}\n```',
        'Here you go:\n{"question_2": "c d?", "question_1": "a b?"}',
        '["a b?", "c d?"]',
        '[{"question": "a b?"}, {"question": "c d?"}]',
        "1. a b?\n2) c d?",
        "- a b?\n* c d?",
    ],
)
def test_parse_accepts_every_wellformed_shape(text: str) -> None:
    assert parse_questions(text) == ["a b?", "c d?"]


def test_parse_orders_numbered_keys_numerically() -> None:
    answer = json.dumps({f"question_{i}": f"q{i}" for i in (10, 2, 1)})
    assert parse_questions(answer) == ["q1", "q2", "q10"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '{"questions": ["a b?", "c d',  # truncated
        '{"question_1": "a b?", "question_2": "c',  # truncated object
        "Sure! These are great questions.",  # prose
        '{"questions": []}',
        '{"answer": 3}',
    ],
)
def test_parse_rejects_malformed_answers(text: str) -> None:
    with pytest.raises(MalformedAnswer):
        parse_questions(text)


# -- filters ---------------------------------------------------------------------------------------------------
def test_clean_question_strips_labels_and_quotes() -> None:
    assert clean_question('  3.  "How  do I reset it?" ') == "How do I reset it?"
    assert clean_question("Question 2: what is X?") == "what is X?"


def test_filters_drop_each_kind_with_a_reason() -> None:
    chunk = "The battery of the device lasts for twelve hours of video playback on a single charge."
    questions = [
        "",
        "battery",
        "x " * 200,
        "How long does the battery last?",
        "how long does the battery LAST",
        "The battery of the device lasts for twelve hours of video playback",
        "battery life hours",
    ]
    kept, report = filter_questions(questions, chunk, max_chars=100)
    assert kept == ["How long does the battery last?", "battery life hours"]
    assert report.rejected == Counter(
        {"empty": 1, "too short": 1, "too long": 1, "duplicate": 1, "copies the chunk": 1}
    )
    assert report.kept == 2


def test_copy_ratio_by_hand() -> None:
    # question trigrams: (a b c), (b c d), (c d z); the chunk has the first two -> 2/3
    assert copy_ratio("a b c d z", "a b c d e") == pytest.approx(2 / 3)


def test_near_duplicates_is_greedy_by_cosine() -> None:
    x = np.array([[1, 0], [0.99, 0.141], [0, 1]], dtype=np.float32)
    assert near_duplicates(x, 0.95) == [0, 2]
    assert near_duplicates(x, 0.999) == [0, 1, 2]


def test_dedup_by_embedding_works_within_chunks_only() -> None:
    groups = {
        "d1": [
            "how do I reset the router",
            "how do I reset the router quickly",
            "what is the warranty period",
        ],
        "d2": ["how do I reset the router"],
    }
    kept, removed = dedup_by_embedding(groups, WordEncoder(), 0.9)
    assert kept == {
        "d1": ["how do I reset the router", "what is the warranty period"],
        "d2": ["how do I reset the router"],
    }
    assert removed == 1


# -- rate limits -----------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=2.0, clock=clock)
    bucket.take(2.0)
    assert bucket.wait_time(1.0) == pytest.approx(0.5)
    clock.now = 0.5
    assert bucket.wait_time(1.0) == 0.0


def test_rpm_limit_spreads_requests_evenly() -> None:
    import asyncio

    clock = FakeClock()
    limiter = RateLimiter(rpm=60, burst_seconds=1.0, clock=clock, sleep=clock.sleep)

    async def go() -> list[float]:
        times = []
        for _ in range(5):
            await limiter.acquire()
            times.append(clock.now)
        return times

    # 60 rpm = one a second, the first immediately
    assert asyncio.run(go()) == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


def test_tpm_limit_waits_for_tokens_and_settles_with_real_usage() -> None:
    import asyncio

    clock = FakeClock()
    limiter = RateLimiter(tpm=600, burst_seconds=10.0, clock=clock, sleep=clock.sleep)  # 10 tokens/s, cap 100

    async def go() -> None:
        await limiter.acquire(100)  # bucket empty now
        limiter.settle(100, 50)  # the answer used only 50: 50 come back
        await limiter.acquire(100)  # needs 50 more tokens -> 5 s
        assert clock.now == pytest.approx(5.0)

    asyncio.run(go())


def test_pause_holds_every_request() -> None:
    import asyncio

    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    limiter.pause(3.0)
    asyncio.run(limiter.acquire())
    assert clock.now == pytest.approx(3.0)


# -- prompts, config -------------------------------------------------------------------------------------------
def test_presets_render_the_chunk_and_count() -> None:
    messages = SEED.messages(chunk="CHUNK TEXT", n=20)
    user = messages[-1]["content"]
    assert "CHUNK TEXT" in user and "20 questions" in user and "question_20" in user and "typos" in user
    assert "company name" in user
    default = DEFAULT.messages(chunk="X", title="T", n=3, examples=["how to foo"])[-1]["content"]
    assert "how to foo" in default and "3 different" in default and "keyword" in default


def test_prompt_file_templates(tmp_path) -> None:  # noqa: ANN001
    txt = tmp_path / "mine.txt"
    txt.write_text('Give $n questions as {"questions": [...]} for: $chunk (costs $$5)')
    prompt = load_prompt(str(txt))
    assert prompt.name == "mine" and len(prompt.version) == 12
    assert (
        prompt.messages(chunk="C", n=2)[0]["content"]
        == 'Give 2 questions as {"questions": [...]} for: C (costs $5)'
    )
    toml = tmp_path / "p.toml"
    toml.write_text('name = "support"\nversion = "3"\nsystem = "sys"\nuser = "Q about $chunk"\n')
    prompt = load_prompt(str(toml))
    assert (prompt.name, prompt.version, prompt.messages(chunk="c", n=1)[0]["content"]) == (
        "support",
        "3",
        "sys",
    )
    with pytest.raises(QadapterError, match=r"\$chnk"):
        PromptTemplate("bad", "1", "about $chnk and $chunk")
    with pytest.raises(QadapterError, match="must contain"):
        PromptTemplate("bad", "1", "no placeholder")
    with pytest.raises(QadapterError, match="presets"):
        load_prompt("no-such-prompt")


def test_examples_are_loaded_and_sampled_deterministically(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n{"text": "c"}\n')
    examples = load_examples(str(path))
    assert examples == ["a", "b", "c"]
    assert pick_examples(examples, 2, key="d1") == pick_examples(examples, 2, key="d1")
    assert len(pick_examples(examples, 5, key="d1")) == 3


def test_config_validates_and_rejects_unknown_keys() -> None:
    with pytest.raises(QadapterError, match="valid settings"):
        GenerateConfig.from_dict({"model": "m", "concurency": 3})
    with pytest.raises(QadapterError, match="--offline"):
        GenerateConfig()
    with pytest.raises(QadapterError, match="concurrency"):
        GenerateConfig(model="m", concurrency=0)
    a = GenerateConfig(model="m").run_name("default", "1")
    assert a == GenerateConfig(model="m", concurrency=32, rpm=10).run_name(
        "default", "1"
    )  # throughput: same run
    assert a != GenerateConfig(model="m", per_chunk=3).run_name("default", "1")


# -- journal ---------------------------------------------------------------------------------------------------
def test_journal_survives_a_torn_last_line(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "run.jsonl"
    with Journal(path) as journal:
        journal.append(
            {
                "doc_id": "d1",
                "status": "ok",
                "questions": ["q"],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
            }
        )
        journal.append(
            {"doc_id": "d2", "status": "malformed", "usage": {"prompt_tokens": 7, "completion_tokens": 1}}
        )
    with path.open("ab") as handle:
        handle.write(b'{"doc_id": "d3", "status": "o')  # a crash mid-write
    journal = Journal(path)
    assert journal.done() == {"d1"}
    assert journal.usage() == Usage(17, 6, 2)
    journal.append({"doc_id": "d3", "status": "ok", "questions": ["q3"]})
    journal.close()
    assert Journal(path).done() == {"d1", "d3"}
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_usage_cost() -> None:
    assert Usage(2_000_000, 1_000_000).cost(0.15, 0.6) == pytest.approx(0.9)
    assert Usage(1, 1).cost(None, None) is None


# -- offline ---------------------------------------------------------------------------------------------------
def test_offline_pseudo_queries() -> None:
    text = "# Storing cells\nLithium cells age faster when stored fully charged in hot rooms. Keep them cool."
    corpus = {
        "a": Document("a", text, "Battery life"),
        "b": Document(
            "b", "The warranty covers manufacturing defects for two full years after purchase date."
        ),
    }
    queries = offline_queries(corpus, 4)
    # title, heading, keyword query (most frequent distinctive terms: 'cells' twice, then ties alphabetically),
    # then the sentence; "Keep them cool." is too short to stand alone
    assert queries["a"] == [
        "Battery life",
        "Storing cells",
        "cells age charged cool",
        "Lithium cells age faster when stored fully charged in hot rooms.",
    ]
    assert (
        queries["b"][-1]
        == "The warranty covers manufacturing defects for two full years after purchase date."
    )
    assert offline_queries(corpus, 4) == queries  # deterministic
    assert offline_queries(corpus, 1)["a"] == ["Battery life"]
    assert split_sentences("One two. Three four!\n\nFive") == ["One two.", "Three four!", "Five"]


# -- merge -----------------------------------------------------------------------------------------------------
def test_merge_is_idempotent_and_numbers_after_existing(tmp_path) -> None:  # noqa: ANN001
    ws = Workspace(tmp_path)
    ws.write_corpus([Document("d1", "x"), Document("d2", "y")])
    ws.write_queries([Query("user-1", "a real question")])
    meta = {"generator": "llm", "model": "m", "prompt": "default", "prompt_version": "1", "run": "r1"}
    first = merge_queries(ws, {"d1": ["q one?", "q two?"], "d2": ["q three?"]}, meta, split="generated")
    assert first.added == 3
    again = merge_queries(ws, {"d1": ["q one?", "q two?"], "d2": ["Q three"]}, meta, split="generated")
    assert (again.added, again.skipped_existing) == (0, 3)
    other = merge_queries(ws, {"d1": ["q one?", "q four?"]}, {**meta, "run": "r2"}, split="generated")
    assert other.added == 1
    queries = ws.queries()
    assert set(queries) == {"user-1", "gen-d1-1", "gen-d1-2", "gen-d2-1", "gen-d1-3"}
    assert queries["gen-d1-3"].text == "q four?" and queries["gen-d1-3"].metadata["run"] == "r2"
    assert queries["gen-d1-1"].metadata == {**meta, "doc_id": "d1"}
    assert ws.qrels("generated") == {
        "gen-d1-1": {"d1": 1},
        "gen-d1-2": {"d1": 1},
        "gen-d2-1": {"d2": 1},
        "gen-d1-3": {"d1": 1},
    }
    replaced = merge_queries(
        ws, {"d1": ["q five?"]}, {**meta, "run": "r2"}, split="generated", replace_run="r2"
    )
    assert (replaced.removed_previous, replaced.added) == (1, 1)
    assert "q four?" not in {q.text for q in ws.queries().values()}


# -- retries and disk errors -----------------------------------------------------------------------------------
def test_retry_after_header_forms() -> None:
    from qadapter.generate.client import retry_after_seconds

    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    assert (
        retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=lambda: 1445412480.0)
        == 10.0
    )
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_is_jittered_exponential_and_capped() -> None:
    import random

    from qadapter.generate.client import ChatClient

    client = ChatClient(
        model="m", base_url="http://127.0.0.1:9/v1", backoff_base=1.0, backoff_max=8.0, rng=random.Random(0)
    )
    delays = [[client.backoff(attempt) for _ in range(200)] for attempt in range(6)]
    for attempt, ds in enumerate(delays):
        assert min(ds) >= 0.0 and max(ds) <= min(8.0, 2.0**attempt)
        assert max(ds) > 0.8 * min(8.0, 2.0**attempt)  # full jitter spans the range
    assert len(set(delays[3])) > 150


def test_a_full_disk_is_a_clear_error_and_keeps_earlier_answers(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import errno
    import os

    from qadapter.generate import journal as journal_module

    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    journal.append({"doc_id": "d1", "status": "ok", "questions": ["q"]})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal_module.os, "fsync", full)
    with pytest.raises(QadapterError, match="free some disk space"):
        journal.append({"doc_id": "d2", "status": "ok", "questions": ["q"]})
    monkeypatch.undo()
    assert "d1" in Journal(path).done()

"""The LLM side of :func:`qadapter.generate.generate`: plan what to ask, ask it, collect the answers.

Steps: :func:`plan` looks every chunk's :func:`~qadapter.generate.journal.request_key` up in the workspace's
journals, so only chunks without a saved answer are asked (one request per distinct chunk text);
:func:`request_all` asks them through the concurrent runner; :func:`collect` filters and de-duplicates every
answer, saved or new, deterministically.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from qadapter.data.types import Document
from qadapter.data.workspace import Workspace
from qadapter.encoders.base import Encoder
from qadapter.errors import QadapterError
from qadapter.generate.config import GenerateConfig
from qadapter.generate.endpoint import normalize_base_url, resolve_llm_base_url
from qadapter.generate.filters import FilterReport, dedup_by_embedding, filter_questions
from qadapter.generate.journal import AnswerIndex, Journal, Usage, asked, request_key, write_run_meta
from qadapter.generate.prompts import PromptTemplate, load_examples, load_prompt
from qadapter.generate.runner import build_messages, estimate_request
from qadapter.generate.summary import GenerateSummary, usage_dict

T = TypeVar("T")


@dataclass
class Plan:
    """What one LLM run will ask: the prompt, the journal, each chunk's request key, and the chunks to ask."""

    config: GenerateConfig
    prompt: PromptTemplate
    examples: list[str]
    run: str
    journal: Journal
    index: AnswerIndex
    keys: dict[str, str]
    todo: list[Document]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also inside a running event loop (Jupyter) by using a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _workspace_examples(ws: Workspace, config: GenerateConfig) -> list[str]:
    if config.examples is None:
        return []
    user_queries = []
    if ws.queries_path.is_file():
        user_queries = [q.text for q in ws.queries().values() if "generator" not in q.metadata]
    return load_examples(config.examples, user_queries)


def plan(ws: Workspace, docs: Sequence[Document], config: GenerateConfig) -> Plan:
    """Decide what to ask: every chunk whose exact request has no saved answer in any journal, once per key."""
    prompt = load_prompt(config.prompt)
    examples = _workspace_examples(ws, config)
    run = config.run_name(prompt.name, prompt.version)
    journal = Journal(ws.state_dir / "generate" / f"{run}.jsonl")
    index = AnswerIndex(journal)
    keys = {d.id: request_key(config.model, build_messages(d, prompt, config, examples)) for d in docs}
    if index.legacy:
        index.adopt_legacy(keys, asked(config.to_dict(), _prompt_dict(prompt)))
    todo: list[Document] = []
    queued: set[str] = set()
    for doc in docs:
        key = keys[doc.id]
        if key not in index and key not in queued:
            queued.add(key)
            todo.append(doc)
    return Plan(config, prompt, examples, run, journal, index, keys, todo)


def new_summary(p: Plan, docs: Sequence[Document], *, dry_run: bool) -> GenerateSummary:
    config = p.config
    return GenerateSummary(
        run=p.run,
        generator="llm",
        model=config.model,
        prompt=p.prompt.name,
        prompt_version=p.prompt.version,
        journal=str(p.journal.path),
        chunks=len(docs),
        already_done=sum(1 for d in docs if p.keys[d.id] in p.index),
        requested=len(p.todo),
        endpoint=normalize_base_url(resolve_llm_base_url(config.llm_base_url)),
        split=config.split,
        dry_run=dry_run,
    )


def estimate(p: Plan, summary: GenerateSummary) -> None:
    """Fill ``summary.estimate`` (tokens, cost) and the first request, sending nothing."""
    prompt_tokens = completion_tokens = 0
    for doc in p.todo:
        prompt_est, completion_est = estimate_request(
            build_messages(doc, p.prompt, p.config, p.examples), p.config
        )
        prompt_tokens += prompt_est
        completion_tokens += completion_est
    usage = Usage(prompt_tokens, completion_tokens, len(p.todo))
    summary.estimate = {**usage_dict(usage), "cost": usage.cost(p.config.price_input, p.config.price_output)}
    if p.todo:
        summary.example_messages = build_messages(p.todo[0], p.prompt, p.config, p.examples)


def _prompt_dict(prompt: PromptTemplate) -> dict[str, str]:
    return {"name": prompt.name, "version": prompt.version, "system": prompt.system, "user": prompt.user}


def _save_run_meta(p: Plan, endpoint: str | None) -> None:
    meta = {"config": p.config.to_dict(), "endpoint": endpoint, "prompt": _prompt_dict(p.prompt)}
    try:
        write_run_meta(p.journal.path.with_suffix(".json"), meta)
    except OSError as exc:
        raise QadapterError(
            f"cannot write {p.journal.path.with_suffix('.json')} ({exc.strerror or exc}); nothing was asked yet, "
            "free some disk space and re-run"
        ) from exc


def request_all(p: Plan, summary: GenerateSummary, *, progress: bool) -> None:
    """Ask for every chunk in ``p.todo``; each answer is journaled as it arrives."""
    from qadapter.generate.client import ChatClient
    from qadapter.generate.ratelimit import RateLimiter
    from qadapter.generate.runner import run_requests

    config = p.config
    _save_run_meta(p, summary.endpoint)

    async def main() -> Any:
        client = ChatClient(
            model=config.model,
            base_url=config.llm_base_url,
            api_key_env=config.api_key_env,
            timeout=config.timeout,
            max_retries=config.max_retries,
            backoff_base=config.backoff_base,
            backoff_max=config.backoff_max,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            json_mode=config.json_mode,
            limiter=RateLimiter(config.rpm, config.tpm),
        )
        try:
            return await run_requests(
                p.todo, client=client, journal=p.journal, prompt=p.prompt, config=config,
                examples=p.examples, progress=progress,
            )  # fmt: skip
        finally:
            summary.requests, summary.retries = client.stats.requests, client.stats.retries
            summary.errors = dict(client.stats.errors)
            await client.aclose()

    outcome = run_sync(main())
    summary.answered, summary.malformed, summary.failed = outcome.answered, outcome.malformed, outcome.failed
    summary.usage = usage_dict(outcome.usage)
    summary.cost = outcome.usage.cost(config.price_input, config.price_output)


def answers(p: Plan, docs: Sequence[Document]) -> list[tuple[Document, dict[str, Any]]]:
    """Each chunk with its saved answer (from this run or any earlier one), in corpus order."""
    p.index.refresh()
    found = ((doc, p.index.get(p.keys[doc.id])) for doc in docs)
    return [(doc, record) for doc, record in found if record is not None]


def collect(
    answered: Sequence[tuple[Document, dict[str, Any]]], config: GenerateConfig, encoder: Encoder | None
) -> tuple[dict[str, list[str]], FilterReport]:
    """Clean, filter and de-duplicate the answers. Deterministic: the same answers always yield the same
    questions, which is what makes re-runs free of duplicates."""
    report = FilterReport()
    groups: dict[str, list[str]] = {}
    for doc, record in answered:
        kept, rep = filter_questions(
            record.get("questions") or [],
            doc.full_text,
            max_chars=config.max_chars,
            min_words=config.min_words,
            copy_threshold=config.copy_threshold,
        )
        report.merge(rep)
        groups[doc.id] = kept
    if config.dedup_threshold is not None and any(groups.values()):
        if encoder is None:
            from qadapter.encoders import get_encoder

            encoder = get_encoder()
        groups, removed = dedup_by_embedding(groups, encoder, config.dedup_threshold)
        report.kept -= removed
        if removed:
            report.rejected["near-duplicate"] += removed
    over = 0
    for doc_id, qs in groups.items():
        over += max(0, len(qs) - config.per_chunk)
        groups[doc_id] = qs[: config.per_chunk]
    if over:
        report.kept -= over
        report.rejected["more than per_chunk"] += over
    return groups, report

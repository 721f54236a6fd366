"""Synthetic training queries: ask any OpenAI-compatible chat model for questions about each chunk.

One entry point, :func:`generate`. It never pays twice for the same chunk: every answer is journaled to
``WS/.qadapter/generate/<run>.jsonl`` as it arrives, and a re-run (after Ctrl-C, a crash or a full disk) asks only
for the chunks without an answer. Queries land in ``WS/queries.jsonl`` as ``gen-<doc_id>-<n>`` with provenance
metadata, and their qrels in ``WS/qrels/<split>.tsv``. ``offline=True`` needs no model server at all (weaker
pseudo-queries cut from the chunks), so the whole pipeline runs anywhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Collection, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qadapter.data.workspace import Workspace
from qadapter.encoders.base import Encoder
from qadapter.errors import QadapterError
from qadapter.generate.config import DEFAULT_SPLIT, GenerateConfig
from qadapter.generate.filters import FilterReport, dedup_by_embedding, filter_questions
from qadapter.generate.journal import Journal, Usage, write_run_meta

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class GenerateSummary:
    """What a call to :func:`generate` did (or, with ``dry_run``, would do)."""

    run: str
    generator: str
    model: str
    prompt: str
    prompt_version: str
    journal: str | None
    chunks: int
    already_done: int
    requested: int
    answered: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    malformed: int = 0
    requests: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    usage_total: dict[str, int] = field(default_factory=dict)
    cost: float | None = None
    cost_total: float | None = None
    queries_added: int = 0
    queries_kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    split: str = DEFAULT_SPLIT
    splits: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    dry_run: bool = False
    estimate: dict[str, Any] = field(default_factory=dict)
    example_messages: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also inside a running event loop (Jupyter) by using a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "calls": usage.calls,
    }


def generate(
    workspace: str | Path | Workspace,
    config: GenerateConfig | None = None,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    documents: Collection[str] | None = None,
    replace: bool = False,
    encoder: Encoder | None = None,
    progress: bool = False,
    **settings: Any,
) -> GenerateSummary:
    """Write synthetic queries and qrels for the chunks of ``workspace``; return a summary.

    Settings are the fields of :class:`GenerateConfig` (``model``, ``base_url``, ``api_key_env``, ``per_chunk``,
    ``prompt``, ``concurrency``, ``rpm``, ``tpm``, ``max_retries``, ``offline``, ...), given as ``config`` and/or
    keywords (keywords win). ``limit`` asks about the first N chunks only (try a prompt before paying for all);
    ``documents`` restricts generation to those document ids (e.g. only training chunks, so that test chunks
    stay unseen).
    ``replace`` drops what an earlier collection of the same run wrote before adding (after changing filters).
    ``encoder`` embeds questions for near-duplicate removal (default: the bundled model).

    Chunks that still fail after every retry are listed in ``summary.failed`` and everything else is written;
    re-running the same call asks only for them. Errors that retrying cannot fix raise :class:`QadapterError`.
    """
    started = time.perf_counter()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if config is None:
        config = GenerateConfig.from_dict(settings)
    elif settings:
        config = GenerateConfig.from_dict({**config.to_dict(), **settings})
    corpus = ws.corpus()
    if documents is not None:
        documents = set(documents)
        unknown = sorted(documents - set(corpus))
        if unknown:
            raise QadapterError(f"{len(unknown)} document id(s) not in the corpus, e.g. {unknown[:3]}")
    docs = [d for d in corpus.values() if documents is None or d.id in documents]
    docs = docs[: limit if limit is not None else None]
    if config.offline:
        summary = _generate_offline(ws, corpus, docs, config, dry_run=dry_run, replace=replace)
    else:
        summary = _generate_llm(
            ws, docs, config, dry_run=dry_run, replace=replace, encoder=encoder, progress=progress
        )
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


def _generate_offline(
    ws: Workspace, corpus: dict, docs: list, config: GenerateConfig, *, dry_run: bool, replace: bool
) -> GenerateSummary:
    from qadapter.generate import offline
    from qadapter.generate.output import merge_queries

    logger.warning(
        "offline pseudo-queries are cut from the chunks themselves: weaker training data than an LLM's questions, "
        "meant for trying the pipeline without a model server"
    )
    summary = GenerateSummary(
        run="offline",
        generator=offline.GENERATOR,
        model=offline.MODEL,
        prompt=offline.PROMPT,
        prompt_version=offline.PROMPT_VERSION,
        journal=None,
        chunks=len(docs),
        already_done=0,
        requested=0,
        split=config.split,
        dry_run=dry_run,
    )
    df, num_docs = offline.document_frequencies(corpus)  # IDF over the whole corpus, even with a limit
    groups = {d.id: offline.pseudo_queries(d, config.per_chunk, df, num_docs) for d in docs}
    summary.queries_kept = sum(len(v) for v in groups.values())
    if dry_run:
        summary.estimate = {"queries": summary.queries_kept, "cost": 0.0}
        return summary
    meta = {
        "generator": offline.GENERATOR,
        "model": offline.MODEL,
        "prompt": offline.PROMPT,
        "prompt_version": offline.PROMPT_VERSION,
        "run": "offline",
    }
    merged = merge_queries(
        ws,
        groups,
        meta,
        split=config.split,
        replace_run="offline" if replace else None,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    summary.queries_added, summary.splits = merged.added, merged.splits
    return summary


def _generate_llm(
    ws: Workspace,
    docs: list,
    config: GenerateConfig,
    *,
    dry_run: bool,
    replace: bool,
    encoder: Encoder | None,
    progress: bool,
) -> GenerateSummary:
    from qadapter.generate.prompts import load_examples, load_prompt
    from qadapter.generate.runner import build_messages, estimate_request

    prompt = load_prompt(config.prompt)
    examples: list[str] = []
    if config.examples is not None:
        user_queries = []
        if ws.queries_path.is_file():
            user_queries = [q.text for q in ws.queries().values() if "generator" not in q.metadata]
        examples = load_examples(config.examples, user_queries)
    run = config.run_name(prompt.name, prompt.version)
    journal_dir = ws.state_dir / "generate"
    journal = Journal(journal_dir / f"{run}.jsonl")
    done = journal.done()
    todo = [d for d in docs if d.id not in done]
    summary = GenerateSummary(
        run=run,
        generator="llm",
        model=config.model,
        prompt=prompt.name,
        prompt_version=prompt.version,
        journal=str(journal.path),
        chunks=len(docs),
        already_done=len(docs) - len(todo),
        requested=len(todo),
        split=config.split,
        dry_run=dry_run,
    )
    if dry_run:
        prompt_tokens = completion_tokens = 0
        for doc in todo:
            p, c = estimate_request(build_messages(doc, prompt, config, examples), config)
            prompt_tokens += p
            completion_tokens += c
        estimate = Usage(prompt_tokens, completion_tokens, len(todo))
        summary.estimate = {
            **_usage_dict(estimate),
            "cost": estimate.cost(config.price_input, config.price_output),
        }
        if todo:
            summary.example_messages = build_messages(todo[0], prompt, config, examples)
        journal.close()
        return summary

    with journal:
        if todo:
            _request_all(journal, todo, config, prompt, examples, summary, progress)
        groups, report = _collect(journal, {d.id: d for d in docs}, config, encoder)
    summary.usage_total = _usage_dict(journal.usage())
    summary.cost_total = journal.usage().cost(config.price_input, config.price_output)
    summary.queries_kept = report.kept
    summary.rejected = dict(report.rejected)
    from qadapter.generate.output import merge_queries

    meta = {
        "generator": "llm",
        "model": config.model,
        "prompt": prompt.name,
        "prompt_version": prompt.version,
        "run": run,
    }
    merged = merge_queries(
        ws,
        groups,
        meta,
        split=config.split,
        replace_run=run if replace else None,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    summary.queries_added, summary.splits = merged.added, merged.splits
    return summary


def _request_all(
    journal: Journal,
    todo: list,
    config: GenerateConfig,
    prompt: Any,
    examples: list[str],
    summary: GenerateSummary,
    progress: bool,
) -> None:
    from qadapter.generate.client import ChatClient
    from qadapter.generate.ratelimit import RateLimiter
    from qadapter.generate.runner import run_requests

    write_run_meta(
        journal.path.with_suffix(".json"),
        {
            "config": config.to_dict(),
            "prompt": {
                "name": prompt.name,
                "version": prompt.version,
                "system": prompt.system,
                "user": prompt.user,
            },
        },
    )

    async def main() -> Any:
        client = ChatClient(
            model=config.model,
            base_url=config.base_url,
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
            outcome = await run_requests(
                todo,
                client=client,
                journal=journal,
                prompt=prompt,
                config=config,
                examples=examples,
                progress=progress,
            )
        finally:
            summary.requests = client.stats.requests
            summary.retries = client.stats.retries
            summary.errors = dict(client.stats.errors)
            await client.aclose()
        return outcome

    outcome = _run_sync(main())
    summary.answered = outcome.answered
    summary.malformed = outcome.malformed
    summary.failed = outcome.failed
    summary.usage = _usage_dict(outcome.usage)
    summary.cost = outcome.usage.cost(config.price_input, config.price_output)


def _collect(
    journal: Journal, docs: dict, config: GenerateConfig, encoder: Encoder | None
) -> tuple[dict[str, list[str]], FilterReport]:
    """Clean, filter and de-duplicate every journaled answer for ``docs``. Deterministic: the same journal always
    yields the same questions, which is what makes re-runs free of duplicates."""
    report = FilterReport()
    groups: dict[str, list[str]] = {}
    for record in journal.answers():
        doc = docs.get(record["doc_id"])
        if doc is None:
            continue
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


__all__ = ["GenerateConfig", "GenerateSummary", "generate"]

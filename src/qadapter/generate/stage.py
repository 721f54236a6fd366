"""The generate stage: :func:`generate`, the one entry point, and the offline and LLM paths it takes."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from qadapter.data.lock import workspace_lock
from qadapter.data.types import Document
from qadapter.data.workspace import Workspace
from qadapter.encoders.base import Encoder
from qadapter.errors import QadapterError
from qadapter.generate.config import GenerateConfig
from qadapter.generate.summary import GenerateSummary, usage_dict

logger = logging.getLogger(__name__)


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

    Settings are the fields of :class:`GenerateConfig` (``model``, ``llm_base_url``, ``api_key_env``,
    ``per_chunk``, ``prompt``, ``concurrency``, ``rpm``, ``tpm``, ``max_retries``, ``offline``, ...), given as
    ``config`` and/or keywords (keywords win). ``limit`` asks about the first N chunks only (try a prompt before
    paying for all); ``documents`` restricts generation to those document ids (e.g. only training chunks, so that
    test chunks stay unseen). ``replace`` drops what an earlier collection of the same run wrote before adding
    (after changing filters). ``encoder`` embeds questions for near-duplicate removal (default: the bundled model).

    Never pays twice: an answer saved for the same (chunk text, model, prompt) in any earlier run is reused,
    whatever endpoint spelling, limits or run name. The workspace is locked for the call
    (:func:`qadapter.data.lock.workspace_lock`; not for a dry run): a second writer fails at once.
    Chunks that still fail after every retry are listed in ``summary.failed`` and everything else is written;
    re-running the same call asks only for them. Errors that retrying cannot fix raise :class:`QadapterError`.
    """
    started = time.perf_counter()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    config = _settings(config, settings)
    docs = select_documents(ws.corpus(), documents, limit)
    with (
        contextlib.nullcontext() if dry_run else workspace_lock(ws.path, "generate")
    ):  # a dry run writes nothing
        if config.offline:
            summary = generate_offline(ws, docs, config, dry_run=dry_run, replace=replace)
        else:
            summary = generate_llm(ws, docs, config, dry_run=dry_run, replace=replace, encoder=encoder,
                                   progress=progress)  # fmt: skip
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


def _settings(config: GenerateConfig | None, settings: dict[str, Any]) -> GenerateConfig:
    if config is None:
        return GenerateConfig.from_dict(settings)
    if settings:
        return GenerateConfig.from_dict({**config.to_dict(), **settings})
    return config


def select_documents(
    corpus: Mapping[str, Document], documents: Collection[str] | None, limit: int | None
) -> list[Document]:
    """The chunks to generate for: those in ``documents`` (all by default), the first ``limit`` of them."""
    if documents is not None:
        documents = set(documents)
        unknown = sorted(documents - set(corpus))
        if unknown:
            raise QadapterError(
                f"{len(unknown)} document id(s) not in the corpus, e.g. {unknown[:3]}; "
                "check the qrels split given to --documents-from"
            )
    docs = [d for d in corpus.values() if documents is None or d.id in documents]
    return docs[:limit] if limit is not None else docs


def _write(ws: Workspace, groups: dict[str, list[str]], meta: dict[str, Any], config: GenerateConfig,
           replace_run: str | None, summary: GenerateSummary, kept_where: str) -> None:  # fmt: skip
    """Merge the questions into the workspace (all files or none) and record what was added."""
    from qadapter.generate.output import merge_queries

    try:
        merged = merge_queries(ws, groups, meta, split=config.split, replace_run=replace_run,
                               test_fraction=config.test_fraction, seed=config.seed)  # fmt: skip
    except OSError as exc:
        raise QadapterError(
            f"cannot write the queries into {ws.path} ({exc.strerror or exc}); nothing there was changed{kept_where}; "
            "free some disk space and re-run the same command"
        ) from exc
    summary.queries_added, summary.queries_existing = merged.added, merged.skipped_existing
    summary.splits = merged.splits


def generate_offline(
    ws: Workspace, docs: list[Document], config: GenerateConfig, *, dry_run: bool, replace: bool
) -> GenerateSummary:
    """Pseudo-queries cut from the chunks: no model server, no cost, weaker training data."""
    from qadapter.generate import offline

    logger.warning(
        "offline pseudo-queries are cut from the chunks themselves: weaker training data than an LLM's questions, "
        "meant for trying the pipeline without a model server"
    )
    summary = GenerateSummary(
        run="offline", generator=offline.GENERATOR, model=offline.MODEL, prompt=offline.PROMPT,
        prompt_version=offline.PROMPT_VERSION, journal=None, chunks=len(docs), already_done=0, requested=0,
        split=config.split, dry_run=dry_run,
    )  # fmt: skip
    df, num_docs = offline.document_frequencies(ws.corpus())  # IDF over the whole corpus, even with a limit
    groups = {d.id: offline.pseudo_queries(d, config.per_chunk, df, num_docs) for d in docs}
    summary.queries_kept = sum(len(v) for v in groups.values())
    if dry_run:
        summary.estimate = {"queries": summary.queries_kept, "cost": 0.0}
        return summary
    meta = {"generator": offline.GENERATOR, "model": offline.MODEL, "prompt": offline.PROMPT,
            "prompt_version": offline.PROMPT_VERSION, "run": "offline"}  # fmt: skip
    _write(ws, groups, meta, config, "offline" if replace else None, summary, "")
    return summary


def generate_llm(
    ws: Workspace,
    docs: list[Document],
    config: GenerateConfig,
    *,
    dry_run: bool,
    replace: bool,
    encoder: Encoder | None,
    progress: bool,
) -> GenerateSummary:
    """Ask an LLM for the chunks without a saved answer, then write the questions of every answered chunk."""
    from qadapter.generate import llm

    p = llm.plan(ws, docs, config)
    summary = llm.new_summary(p, docs, dry_run=dry_run)
    if dry_run:
        llm.estimate(p, summary)
        return summary
    with p.journal:
        if p.todo:
            llm.request_all(p, summary, progress=progress)
    groups, report = llm.collect(llm.answers(p, docs), config, encoder)
    total = p.journal.usage()
    summary.usage_total = usage_dict(total)
    summary.cost_total = total.cost(config.price_input, config.price_output)
    summary.queries_kept, summary.rejected = report.kept, dict(report.rejected)
    meta = {"generator": "llm", "model": config.model, "prompt": p.prompt.name,
            "prompt_version": p.prompt.version, "run": p.run}  # fmt: skip
    _write(
        ws, groups, meta, config, p.run if replace else None, summary, " (every answer stays in the journal)"
    )
    return summary

"""What a generation run did, as data (:class:`GenerateSummary`) and as sentences a person can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qadapter.generate.config import DEFAULT_SPLIT
from qadapter.generate.journal import Usage


@dataclass
class GenerateSummary:
    """What a call to :func:`qadapter.generate.generate` did (or, with ``dry_run``, would do).

    ``queries_kept`` questions passed the filters; ``queries_added`` of them were new to the workspace and
    ``queries_existing`` were already there (same text for the same chunk, from an earlier run).
    """

    run: str
    generator: str
    model: str
    prompt: str
    prompt_version: str
    journal: str | None
    chunks: int
    already_done: int
    requested: int
    endpoint: str | None = None
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
    queries_existing: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    split: str = DEFAULT_SPLIT
    splits: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    dry_run: bool = False
    estimate: dict[str, Any] = field(default_factory=dict)
    example_messages: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "calls": usage.calls,
    }


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def queries_line(summary: GenerateSummary) -> str:
    """E.g. ``wrote 13,479 queries for 2,696 chunks (offline pseudo-queries); 6 already in the workspace``."""
    how = (
        "offline pseudo-queries" if summary.generator == "offline" else f"{summary.model}, run {summary.run}"
    )
    line = f"wrote {_count(summary.queries_added, 'query', 'queries')} for "
    line += f"{_count(summary.chunks, 'chunk', 'chunks')} ({how})"
    notes = []
    if summary.queries_existing:
        notes.append(f"{summary.queries_existing:,} already in the workspace")
    rejected = sum(summary.rejected.values())
    if rejected:
        reasons = ", ".join(f"{v:,} {k}" for k, v in sorted(summary.rejected.items()))
        notes.append(f"{rejected:,} dropped by the filters ({reasons})")
    if notes:
        line += "; " + "; ".join(notes)
    return f"{line}; qrels: {', '.join(summary.splits) or 'none'}"


def requests_lines(summary: GenerateSummary) -> list[str]:
    """The paid part of an LLM run: chunks answered, requests, retries and tokens."""
    lines = [
        f"run {summary.run} at {summary.endpoint}: {summary.answered} chunks answered now, "
        f"{summary.already_done} earlier, {len(summary.failed)} failed; {summary.requests} requests, "
        f"{summary.retries} retries, {summary.malformed} malformed answers"
    ]
    if summary.usage:
        usage = summary.usage
        cost = f", ~${summary.cost:.4f}" if summary.cost is not None else ""
        lines.append(
            f"tokens this run: {usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion{cost}"
        )
    total = summary.usage_total
    if total:
        cost = f", ~${summary.cost_total:.4f}" if summary.cost_total is not None else ""
        lines.append(
            f"tokens all runs: {total['prompt_tokens']:,} prompt + {total['completion_tokens']:,} completion{cost}"
        )
    return lines


def dry_run_lines(summary: GenerateSummary) -> list[str]:
    est = summary.estimate
    if summary.generator == "offline":
        return [
            f"dry run: would write {est['queries']:,} offline pseudo-queries for {summary.chunks:,} chunks (free)"
        ]
    cost = (
        f", ~${est['cost']:.4f}"
        if est.get("cost") is not None
        else " (pass --price-input/--price-output for a cost estimate)"
    )
    lines = [
        f"dry run ({summary.run}): {summary.requested} of {summary.chunks} chunks to request "
        f"({summary.already_done} already answered)",
        f"estimate: ~{est['prompt_tokens']:,} prompt + ~{est['completion_tokens']:,} completion tokens{cost}",
    ]
    if summary.example_messages:
        lines.append("first request:")
        lines += [f"--- {m['role']} ---\n{m['content']}" for m in summary.example_messages]
    return lines


def describe(summary: GenerateSummary) -> list[str]:
    """The summary as lines for a person (the CLI prints them)."""
    if summary.dry_run:
        return dry_run_lines(summary)
    lines = requests_lines(summary) if summary.generator == "llm" else []
    return [*lines, queries_line(summary)]

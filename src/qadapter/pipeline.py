"""The whole job in one call: ingest/import -> (generate) -> split -> embed -> train -> evaluate -> report.

Every stage writes its output to disk and is skipped when that output already exists, so an interrupted ``run``
continues where it stopped (the embedding cache even resumes inside the embed stage).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qadapter.adapters.artifact import CONFIG_FILE
from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.core.device import DEFAULT_PRECISION
from qadapter.data.lock import workspace_lock
from qadapter.data.workspace import Workspace
from qadapter.errors import QadapterError
from qadapter.generate.config import DEFAULT_PER_CHUNK
from qadapter.report.record import record_evaluation

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    workspace: Path
    adapter: Path
    results: dict[str, Any]
    steps: list[str] = field(default_factory=list)
    report: Path | None = None


def _prepare_workspace(
    ws: Workspace,
    sources: Sequence[str | Path],
    *,
    progress: bool,
    chunk_size: int | None,
    overlap: int | None,
) -> str:
    """Create the workspace from ``sources`` unless it exists. Returns what was done."""
    if ws.exists():
        return "workspace exists"
    if not sources:
        raise QadapterError(f"{ws.path} is not a workspace yet; give documents or a dataset to start from")
    paths = [Path(s) for s in sources]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise QadapterError(f"not found: {', '.join(missing)}")
    from qadapter.importers import detect_format, import_data

    if len(paths) == 1:
        try:
            fmt = detect_format(paths[0])
        except QadapterError:
            fmt = None
        if fmt is not None:
            import_data(paths[0], ws.path, format=fmt)
            return f"imported {paths[0]} ({fmt})"
    from qadapter.ingest import ingest

    ingest(paths, ws.path, chunk_size=chunk_size, overlap=overlap, progress=progress)
    return f"ingested {len(paths)} path(s)"


def _ensure_queries(
    ws: Workspace, *, llm_model: str | None, llm_base_url: str | None, per_chunk: int, progress: bool
) -> str | None:
    """Generate queries when the workspace has no qrels at all; say how many and how."""
    if ws.splits():
        return None
    from qadapter.generate import generate
    from qadapter.generate.summary import queries_line

    if llm_model:
        summary = generate(
            ws, model=llm_model, llm_base_url=llm_base_url, per_chunk=per_chunk, progress=progress
        )
        if summary.failed:
            logger.warning(
                "%d of %d chunks got no questions from %s (first: %s); training goes on without them, "
                "'qadapter generate' with the same settings asks only for them",
                len(summary.failed), summary.requested, llm_model, next(iter(summary.failed.values())),
            )  # fmt: skip
        how = f"asked {llm_model} at {summary.endpoint}: {summary.answered} chunks answered now, "
        how += f"{summary.already_done} reused from earlier answers, {len(summary.failed)} failed"
    else:
        logger.warning(
            "no queries in %s and no --llm-model: using the offline pseudo-query generator (weaker)", ws.path
        )
        summary = generate(ws, offline=True, per_chunk=per_chunk, progress=progress)
        how = "pseudo-queries cut from the chunks, weaker than an LLM's; pass --llm-model for real questions"
    return f"{queries_line(summary)} ({per_chunk} per chunk asked; {how})"


#: qrels splits that ``run`` divides into train/test when those are missing, in order of preference: imported
#: judgements, generated queries, a query log
SPLIT_SOURCES = ("all", "generated", "log")


def _ensure_splits(
    ws: Workspace, train_split: str, test_split: str, *, by: str, test_fraction: float, seed: int
) -> str | None:
    splits = ws.splits()
    if train_split in splits and test_split in splits:
        return None
    source = next((s for s in SPLIT_SOURCES if s in splits), None)
    if source is None:
        raise QadapterError(
            f"{ws.path}: no qrels splits '{train_split}'/'{test_split}' and no {' or '.join(map(repr, SPLIT_SOURCES))} "
            f"split to make them from (available: {', '.join(splits) or 'none'})"
        )
    from qadapter.data.splits import make_splits

    make_splits(ws, source, by=by, test_fraction=test_fraction, seed=seed, names=(train_split, test_split))  # type: ignore[arg-type]
    return f"split {source} by {by} into {train_split}/{test_split}"


def run(
    workspace: str | Path,
    sources: Sequence[str | Path] = (),
    *,
    adapter: str | Path | None = None,
    train_split: str = "train",
    test_split: str = "test",
    split_by: str = "document",
    test_fraction: float = 0.2,
    recipe: str = "default",
    model: str = DEFAULT_MODEL,
    store: str = "exact",
    llm_model: str | None = None,
    llm_base_url: str | None = None,
    base_url: str | None = None,
    per_chunk: int = DEFAULT_PER_CHUNK,
    chunk_size: int | None = None,
    overlap: int | None = None,
    seed: int = 0,
    pseudo_queries: int = 10,
    progress: bool = False,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
) -> RunResult:
    """Run every stage that has no output yet and return the evaluation results.

    ``llm_model``/``llm_base_url``: the chat model (and its endpoint) that writes queries when the workspace has
    none (else offline pseudo-queries). ``model``/``base_url``: the embedding model (``base_url`` is its
    endpoint, for ``openai:NAME``). ``device`` is where the base model, training and exact search run and
    ``precision`` the dtype a local base model computes in (see ``qadapter embed --help``). The workspace is locked
    against a second writer from the first stage that writes into an existing workspace to the last.
    """
    ws = Workspace(workspace)
    adapter_path = Path(adapter) if adapter else ws.path / "adapter"
    encoder = _embedding_model(model, base_url, device, precision)  # a wrong --base-url fails before any work
    steps = [_prepare_workspace(ws, sources, progress=progress, chunk_size=chunk_size, overlap=overlap)]
    with workspace_lock(ws.path, "run"):
        for step in (
            _ensure_queries(
                ws, llm_model=llm_model, llm_base_url=llm_base_url, per_chunk=per_chunk, progress=progress
            ),
            _ensure_splits(ws, train_split, test_split, by=split_by, test_fraction=test_fraction, seed=seed),
        ):
            if step:
                steps.append(step)
        done, results, report = _train_and_evaluate(
            ws, adapter_path, encoder, (train_split, test_split), recipe=recipe, store=store, seed=seed,
            pseudo_queries=pseudo_queries, progress=progress, device=device,
        )  # fmt: skip
    return RunResult(ws.path, adapter_path, results, steps + done, report)


def _embedding_model(model: str, base_url: str | None, device: str, precision: str) -> Any:
    """The embedding model as given (every stage builds it on ``device``), or its encoder: at ``base_url``
    (``--base-url``: the embeddings endpoint), or computing in a ``precision`` other than float32."""
    from qadapter.encoders import get_encoder

    if base_url is None:
        return (
            model
            if precision == DEFAULT_PRECISION
            else get_encoder(model, device=device, precision=precision)
        )
    if not model.startswith("openai:"):
        raise QadapterError(
            f"--base-url is the embeddings endpoint, for --model openai:NAME; got --model {model!r}. "
            "For the chat model that writes queries, pass --llm-base-url"
        )
    return get_encoder(model, base_url=base_url, precision=precision)


def _train_and_evaluate(
    ws: Workspace,
    adapter_path: Path,
    model: Any,
    splits: tuple[str, str],
    *,
    recipe: str,
    store: str,
    seed: int,
    pseudo_queries: int,
    progress: bool,
    device: str,
) -> tuple[list[str], dict[str, Any], Path | None]:
    """Embed, train (unless the adapter exists), evaluate and report. Returns (steps done, results, report)."""
    from qadapter.embedding import embed_workspace
    from qadapter.evaluate import evaluate
    from qadapter.train import train

    train_split, test_split = splits
    embed_workspace(ws, [train_split, test_split], model=model, progress=progress, device=device)
    steps = ["embedded corpus and queries (cached)"]
    if (adapter_path / CONFIG_FILE).is_file():
        steps.append(f"adapter exists: {adapter_path}")
    else:
        result = train(ws, train_split, output=adapter_path, recipe=recipe, model=model, seed=seed,
                       pseudo_queries=pseudo_queries, progress=progress, device=device)  # fmt: skip
        steps.append(f"trained {adapter_path}: {result.chosen} ({result.reason})")
    # an encoder built here (an endpoint, a precision) also encodes the test queries; a name is the adapter's own
    encoder = None if isinstance(model, str) else model
    results = evaluate(
        ws,
        test_split,
        adapter=adapter_path,
        model=encoder,
        store=store,
        seed=seed,
        progress=progress,
        device=device,
    )
    report = record_evaluation(adapter_path, results)
    steps.append(f"evaluated on {results['n_queries']} {test_split} queries; report at {report}")
    return steps, results, report

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
from qadapter.data.workspace import Workspace
from qadapter.errors import QadapterError
from qadapter.evaluate.record import record_evaluation

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
    ws: Workspace, *, llm_model: str | None, base_url: str | None, per_chunk: int, progress: bool
) -> str | None:
    if ws.splits():
        return None
    from qadapter.generate import generate

    if llm_model:
        summary = generate(ws, model=llm_model, base_url=base_url, per_chunk=per_chunk, progress=progress)
    else:
        logger.warning(
            "no queries in %s and no --llm-model: using the offline pseudo-query generator (weaker)", ws.path
        )
        summary = generate(ws, offline=True, per_chunk=per_chunk, progress=progress)
    source = (
        f"with {llm_model}"
        if llm_model
        else "offline (pseudo-queries cut from the chunks: weaker than an LLM's)"
    )
    return f"generated {summary.queries_added} queries {source}"


def _ensure_splits(
    ws: Workspace, train_split: str, test_split: str, *, by: str, test_fraction: float, seed: int
) -> str | None:
    splits = ws.splits()
    if train_split in splits and test_split in splits:
        return None
    source = next((s for s in ("all", "generated") if s in splits), None)
    if source is None:
        raise QadapterError(
            f"{ws.path}: no qrels splits '{train_split}'/'{test_split}' and no 'all' or 'generated' split to make them "
            f"from (available: {', '.join(splits) or 'none'})"
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
    base_url: str | None = None,
    per_chunk: int = 5,
    chunk_size: int | None = None,
    overlap: int | None = None,
    seed: int = 0,
    pseudo_queries: int = 10,
    progress: bool = False,
) -> RunResult:
    """Run every stage that has no output yet and return the evaluation results."""
    from qadapter.embedding import embed_workspace
    from qadapter.evaluate import evaluate
    from qadapter.train import train

    ws = Workspace(workspace)
    adapter_path = Path(adapter) if adapter else ws.path / "adapter"
    steps = [_prepare_workspace(ws, sources, progress=progress, chunk_size=chunk_size, overlap=overlap)]
    for step in (
        _ensure_queries(ws, llm_model=llm_model, base_url=base_url, per_chunk=per_chunk, progress=progress),
        _ensure_splits(ws, train_split, test_split, by=split_by, test_fraction=test_fraction, seed=seed),
    ):
        if step:
            steps.append(step)
    embed_workspace(ws, [train_split, test_split], model=model, progress=progress)
    steps.append("embedded corpus and queries (cached)")
    if (adapter_path / CONFIG_FILE).is_file():
        steps.append(f"adapter exists: {adapter_path}")
    else:
        result = train(
            ws,
            train_split,
            output=adapter_path,
            recipe=recipe,
            model=model,
            seed=seed,
            pseudo_queries=pseudo_queries,
            progress=progress,
        )
        steps.append(f"trained {adapter_path}: {result.chosen} ({result.reason})")
    results = evaluate(ws, test_split, adapter=adapter_path, store=store, seed=seed, progress=progress)
    report = record_evaluation(adapter_path, results)
    steps.append(f"evaluated on {results['n_queries']} {test_split} queries; report at {report}")
    return RunResult(ws.path, adapter_path, results, steps, report)

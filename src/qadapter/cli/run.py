"""``qadapter run WS [SOURCES...]``: the whole job, resuming from whatever already exists."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import click

from qadapter.cli.options import (
    base_url_option,
    device_option,
    json_option,
    llm_base_url_option,
    model_option,
    precision_option,
    progress_option,
    want_progress,
)
from qadapter.evaluate.retrieval import EVAL_STORES
from qadapter.generate.config import DEFAULT_PER_CHUNK
from qadapter.train.recipes import RECIPES

if TYPE_CHECKING:
    from qadapter.pipeline import RunResult

SHORT_METRICS = ("hit@1", "hit@10", "recall@10", "mrr@10", "ndcg@10", "map")


def print_run(result: RunResult, as_json: bool) -> None:
    from qadapter.report import format_table

    if as_json:
        click.echo(
            json.dumps(
                {
                    "workspace": str(result.workspace),
                    "adapter": str(result.adapter),
                    "report": str(result.report),
                    **result.results,
                }
            )
        )
        return
    for step in result.steps:
        click.echo(f"- {step}")
    res = result.results
    short = [m for m in SHORT_METRICS if m in res["baseline"]] or list(res["baseline"])
    table = {
        **res,
        "baseline": {m: res["baseline"][m] for m in short},
        "adapted": {m: res["adapted"][m] for m in short},
    }
    click.echo(f"\n{res['n_queries']} {res['split']} queries, {res['model']}, {res['store']} search:")
    click.echo(format_table(cast(Any, table)))
    if res.get("caveat"):
        click.echo(f"note: {res['caveat']}")


@click.command("run")
@click.argument("workspace", type=click.Path(file_okay=False))
@click.argument("sources", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--adapter", type=click.Path(file_okay=False), default=None, help="Adapter folder (default: WS/adapter)."
)
@click.option("--train-split", default="train", show_default=True)
@click.option("--test-split", default="test", show_default=True)
@click.option(
    "--split-by",
    type=click.Choice(["document", "query"]),
    default="document",
    show_default=True,
    help="How to make train/test when the data has no such splits.",
)
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="default", show_default=True)
@model_option
@click.option("--store", type=click.Choice(EVAL_STORES), default="exact", show_default=True)
@click.option(
    "--llm-model",
    default=None,
    help="Chat model that writes queries when the documents have none (else offline pseudo-queries).",
)
@llm_base_url_option
@base_url_option
@click.option(
    "--per-chunk",
    type=click.IntRange(min=1),
    default=DEFAULT_PER_CHUNK,
    show_default=True,
    help="Queries to generate per chunk when the documents have none (with --llm-model or offline).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@device_option
@precision_option
@progress_option
@json_option
def run_command(
    workspace: str,
    sources: tuple[str, ...],
    adapter: str | None,
    train_split: str,
    test_split: str,
    split_by: str,
    recipe: str,
    model: str,
    store: str,
    llm_model: str | None,
    llm_base_url: str | None,
    base_url: str | None,
    per_chunk: int,
    seed: int,
    device: str,
    precision: str,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Ingest or import SOURCES into WORKSPACE (unless it exists), then embed, train, evaluate and report.

    \b
    Examples:
      qadapter run ws ../shared/data/seed/apple_QA_dataset.json
      qadapter run ws docs/ --llm-model gpt-4o-mini      # documents without queries
      qadapter run ws docs/ --llm-model llama3.1:8b --llm-base-url http://localhost:11434/v1
    """
    from qadapter.pipeline import run

    result = run(
        workspace,
        sources,
        adapter=adapter,
        train_split=train_split,
        test_split=test_split,
        split_by=split_by,
        recipe=recipe,
        model=model,
        store=store,
        llm_model=llm_model,
        llm_base_url=llm_base_url,
        base_url=base_url,
        per_chunk=per_chunk,
        seed=seed,
        progress=want_progress(progress),
        device=device,
        precision=precision,
    )
    print_run(result, as_json)
    if not as_json and result.report:
        click.echo(f"\nreport: {result.report}")

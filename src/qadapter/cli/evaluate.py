"""``qadapter evaluate WS --adapter A``: the base model and the adapter on the same queries, with a report."""

from __future__ import annotations

import json

import click

from qadapter.cli.options import (
    device_option,
    json_option,
    precision_option,
    progress_option,
    want_progress,
)
from qadapter.evaluate.retrieval import EVAL_STORES


@click.command("evaluate")
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="test", show_default=True, help="Qrels split to evaluate on.")
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Adapter folder (omit to score the base model only).",
)
@click.option("--model", default=None, help="Base model (default: the one recorded in the adapter).")
@click.option(
    "--store",
    type=click.Choice(EVAL_STORES),
    default="exact",
    show_default=True,
    help="exact search, or a real persistent collection of that vector store (cosine).",
)
@device_option
@precision_option
@click.option("-k", "ks", default="1,3,5,10", show_default=True, help="Cutoffs for hit/recall/mrr/ndcg.")
@click.option(
    "--metrics", default=None, help="Explicit comma-separated metric list, e.g. 'hit@10,mrr@10,ndcg@10,map'."
)
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Write report.md and charts into ADAPTER/report.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap and randomization test."
)
@progress_option
@json_option
def evaluate_command(
    workspace: str,
    split: str,
    adapter: str | None,
    model: str | None,
    store: str,
    device: str,
    precision: str,
    ks: str,
    metrics: str | None,
    report: bool,
    seed: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Score the base model and the adapted queries of WORKSPACE's qrels/<split>.tsv.

    With --json, stdout carries exactly one JSON object: {"n_queries", "baseline": {...}, "adapted": {...},
    "caveat": str | null, ...}. When any test query is an offline pseudo-query, both outputs say so.
    """
    from qadapter.evaluate import evaluate
    from qadapter.report import format_table
    from qadapter.report.record import record_evaluation

    results = evaluate(
        workspace,
        split,
        adapter=adapter,
        model=model,
        metrics=_metric_names(metrics, ks),
        store=store,
        device=device,
        precision=precision,
        seed=seed,
        progress=want_progress(progress),
    )
    report_path = record_evaluation(adapter, results) if adapter and report else None
    if as_json:
        click.echo(json.dumps({**results, "report": str(report_path) if report_path else None}))
        return
    click.echo(f"{results['n_queries']} queries, split {split}, model {results['model']}, {store} search")
    click.echo(format_table(results))  # type: ignore[arg-type]
    if results.get("caveat"):
        click.echo(f"note: {results['caveat']}")
    if report_path:
        click.echo(f"report: {report_path}")


def _metric_names(metrics: str | None, ks: str) -> list[str]:
    """--metrics as given, else hit/recall/mrr/ndcg at the -k cut-offs."""
    from qadapter.core.metrics import default_metrics
    from qadapter.errors import QadapterError

    if metrics:
        return [m.strip() for m in metrics.split(",") if m.strip()]
    try:
        cutoffs = [int(k) for k in ks.split(",") if k.strip()]
    except ValueError:
        raise QadapterError(f"-k takes comma-separated integers like '1,3,5,10', got '{ks}'") from None
    return default_metrics(cutoffs)

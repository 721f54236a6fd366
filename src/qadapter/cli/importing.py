"""``qadapter import SRC -o WS``: import existing questions and chunks into a workspace."""

from __future__ import annotations

import json

import click

from qadapter.cli.options import json_option, overwrite_option

FORMATS = ["auto", "beir", "seed-json", "llamaindex", "querylog"]


@click.command("import")
@click.argument("source", type=click.Path(exists=True))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="Workspace folder to create (or add a query log to).",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Source format.",
)
@click.option(
    "--corpus",
    type=click.Path(exists=True),
    default=None,
    help="For a query log: the workspace or corpus.jsonl its chunks come from (default: the output workspace's).",
)
@overwrite_option
@json_option
def import_command(
    source: str, output: str, format_: str, corpus: str | None, overwrite: bool, as_json: bool
) -> None:
    """Import a BEIR folder, the notebook's JSON, LlamaIndex JSON, or a JSONL query log.

    \b
    A query log has one JSON object per line:
      {"query": "...", "doc_ids": ["chunk-3"]}   or   {"query": "...", "doc_texts": ["..."]}
    with optional "score" (relevance grade), "id" and "split".
    \b
    Examples:
      qadapter import apple_QA_dataset.json -o ws && qadapter split ws
      qadapter import queries.jsonl -o ws          # adds real queries to an ingested workspace
    """
    from qadapter.importers import MANIFEST_FILE, import_data

    ws = import_data(source, output, format=format_, overwrite=overwrite, corpus=corpus)
    manifest = json.loads((ws.path / MANIFEST_FILE).read_text(encoding="utf-8"))
    summary = {
        "workspace": str(ws.path),
        "format": manifest["source_format"],
        "documents": manifest["documents"],
        "queries": manifest["queries"],
        "qrels": manifest["qrels"],
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    splits = ", ".join(f"{name} ({n} judgements)" for name, n in summary["qrels"].items()) or "none"
    click.echo(
        f"imported {summary['format']}: {summary['documents']} documents, {summary['queries']} queries, "
        f"splits: {splits} -> {ws.path}"
    )
    if set(summary["qrels"]) == {"all"}:
        click.echo(f"next: make train/test splits with: qadapter split {ws.path}")

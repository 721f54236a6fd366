"""``qadapter import SRC -o WS``: import existing questions and chunks into a workspace."""

from __future__ import annotations

import json

import click

from qadapter.cli.options import device_option, json_option, model_option, overwrite_option, precision_option
from qadapter.importers.registry import format_choices


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
    type=click.Choice(format_choices()),
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
@click.option(
    "--from-store",
    "store",
    type=click.Choice(["chroma", "lancedb", "qdrant"]),
    default=None,
    help="SOURCE is a vector database folder: read its documents and stored vectors (nothing is re-embedded).",
)
@click.option("--collection", default=None, help="Collection (table) to read with --from-store.")
@model_option
@device_option
@precision_option
@overwrite_option
@json_option
def import_command(
    source: str,
    output: str,
    format_: str,
    corpus: str | None,
    store: str | None,
    collection: str | None,
    model: str,
    device: str,
    precision: str,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Import a BEIR folder, the notebook's JSON, LlamaIndex JSON, or a JSONL query log.

    \b
    A query log has one JSON object per line:
      {"query": "...", "doc_ids": ["chunk-3"]}   or   {"query": "...", "doc_texts": ["..."]}
    with optional "score" (relevance grade), "id" and "split".
    \b
    Examples:
      qadapter import apple_QA_dataset.json -o ws && qadapter split ws
      qadapter import queries.jsonl -o ws          # appends real queries (split "log") to a workspace
      qadapter split ws --from log                 # -> log-train, log-test
      qadapter import ./chroma-db --from-store chroma --collection docs -o ws
    """
    from qadapter.importers import MANIFEST_FILE, import_data

    if store is not None:
        _import_store(source, output, store, collection, model, device, precision, overwrite, as_json)
        return

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
    elif set(summary["qrels"]) == {"log"}:
        click.echo(f"next: hold out real queries with: qadapter split {ws.path} --from log")


def _import_store(
    source: str,
    output: str,
    store: str,
    collection: str | None,
    model: str,
    device: str,
    precision: str,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Corpus and stored vectors from an existing vector database: the stored vectors seed the embedding cache.

    The model re-embeds only a small sample to check the stored vectors, on ``device``; they are cached under the
    identity of ``precision``, so that later ``embed``/``train``/``evaluate`` runs with the same ``--precision``
    find them (a run at another precision embeds the documents itself)."""
    from qadapter.encoders import get_encoder
    from qadapter.errors import QadapterError
    from qadapter.stores import get_store
    from qadapter.stores.importing import import_from_store

    if not collection:
        raise QadapterError("--from-store needs --collection NAME (the collection or table to read)")
    encoder = get_encoder(model, device=device, precision=precision)
    with get_store(store, source, collection) as db:
        ws = import_from_store(db, output, encoder, overwrite=overwrite)
    n_docs = sum(1 for _ in ws.corpus())
    if as_json:
        click.echo(
            json.dumps(
                {
                    "workspace": str(ws.path),
                    "format": store,
                    "documents": n_docs,
                    "model": encoder.name,
                    "precision": getattr(encoder, "precision", None),
                }
            )
        )
        return
    click.echo(
        f"imported {n_docs} documents and their stored vectors from {store} collection '{collection}' -> {ws.path}; "
        "add queries with 'qadapter import QUERY_LOG -o WS' or 'qadapter generate WS'"
    )

"""``qadapter export ADAPTER --to sentence-transformers -o DIR``: use the adapter outside qadapter."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qadapter.cli.options import json_option, overwrite_option

#: export target -> one-line description (the targets the command accepts).
TARGETS = {
    "sentence-transformers": "a Sentence Transformers model folder: encode_query applies the adapter, "
    "encode_document / encode give the base vectors",
}


@click.command("export")
@click.argument("adapter", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Choice(list(TARGETS)),
    help="Export format (sentence-transformers: a model folder whose encode_query applies the adapter).",
)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder to write.")
@click.option(
    "--model",
    default=None,
    help="Base model (the bundled all-MiniLM-L6-v2 or a local Sentence Transformers folder). "
    "Default: the one recorded in the adapter.",
)
@overwrite_option
@json_option
def export_command(
    adapter: Path, target: str, output: Path, model: str | None, overwrite: bool, as_json: bool
) -> None:
    """Export ADAPTER (a folder written by 'qadapter train') to another format.

    With --to sentence-transformers the folder loads with plain SentenceTransformer(DIR), no qadapter needed.
    Use model.encode_query(...) for queries: plain encode() and encode_document() give the unchanged base
    vectors, so the existing document index stays valid.
    """
    from qadapter.integrations.sentence_transformers import export_sentence_transformers

    path = export_sentence_transformers(adapter, output, encoder=model, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps({"target": target, "output": str(path)}))
    else:
        click.echo(f"wrote {path} (Sentence Transformers; use model.encode_query(...) for queries)")

"""``qadapter ingest PATH... -o WS``: chunk files and folders into a new workspace."""

from __future__ import annotations

import json
import sys
import time

import click

from qadapter.cli.options import json_option, model_option, overwrite_option
from qadapter.ingest.chunking import UNITS


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="Workspace folder to create.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=None,
    help="Chunk size in --unit (default: what the model reads, e.g. 254 tokens; 800 for chars).",
)
@click.option(
    "--overlap", type=click.IntRange(min=0), default=None, help="Overlap between chunks (default: size/8)."
)
@click.option(
    "--unit",
    type=click.Choice(UNITS),
    default="tokens",
    show_default=True,
    help="Count chunk size in the model's tokens, or in characters (the notebook: --unit chars --chunk-size 800 --overlap 400).",
)
@model_option
@click.option(
    "--skip-bad", is_flag=True, help="Skip unreadable files (empty, corrupt, no text layer) with a warning."
)
@click.option(
    "--encoding",
    default=None,
    help="Text encoding of .txt/.md/.html files (default: UTF-8, else detected; the one used is in ingest.json).",
)
@click.option(
    "--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal)."
)
@overwrite_option
@json_option
def ingest_command(
    paths: tuple[str, ...],
    output: str,
    chunk_size: int | None,
    overlap: int | None,
    unit: str,
    model: str,
    skip_bad: bool,
    encoding: str | None,
    progress: bool | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Chunk PDF, Markdown, text and HTML files (folders are searched recursively) into a workspace corpus.

    \b
    Examples:
      qadapter ingest docs/ report.pdf -o ws
      qadapter ingest notes/ -o ws --unit chars --chunk-size 800 --overlap 400
      qadapter ingest old-notes/ -o ws --encoding latin-1
    """
    from qadapter.ingest import MANIFEST_FILE, ingest

    started = time.perf_counter()
    ws = ingest(
        list(paths),
        output,
        chunk_size=chunk_size,
        overlap=overlap,
        unit=unit,  # type: ignore[arg-type]
        model=model,
        overwrite=overwrite,
        progress=sys.stderr.isatty() if progress is None else progress,
        skip_bad=skip_bad,
        encoding=encoding,
    )
    manifest = json.loads((ws.path / MANIFEST_FILE).read_text(encoding="utf-8"))
    files = [s for s in manifest["sources"] if "chunks" in s]
    skipped = [s for s in manifest["sources"] if "skipped" in s]
    summary = {
        "workspace": str(ws.path),
        "files": len(files),
        "skipped": len(skipped),
        "documents": manifest["documents"],
        "chunking": manifest["chunking"],
        "seconds": round(time.perf_counter() - started, 2),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    chunking = manifest["chunking"]
    click.echo(
        f"wrote {summary['documents']} chunks from {len(files)} file(s) to {ws.path} "
        f"({chunking['chunk_size']} {chunking['unit']}, overlap {chunking['overlap']})"
        + (f"; skipped {len(skipped)} unreadable file(s)" if skipped else "")
    )

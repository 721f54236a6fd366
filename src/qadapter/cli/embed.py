"""``qadapter embed WS``: encode corpus and queries once into the workspace cache (later stages re-encode nothing)."""

from __future__ import annotations

import json
import time

import click

from qadapter.cli.options import (
    api_key_env_option,
    base_url_option,
    device_option,
    json_option,
    model_option,
    precision_option,
    progress_option,
    want_progress,
)
from qadapter.encoders.cache import DTYPES
from qadapter.encoders.engines import ENGINES


@click.command("embed")
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--split", "splits", multiple=True, help="Qrels split(s) whose queries to embed (default: all)."
)
@model_option
@device_option
@precision_option
@click.option(
    "--engine",
    type=click.Choice(list(ENGINES)),
    default="local",
    show_default=True,
    help="Where encoding runs: this process, or a Ray Data actor pool (RAY_ADDRESS names a cluster).",
)
@click.option(
    "--cache-dtype",
    type=click.Choice(DTYPES),
    default="float32",
    show_default=True,
    help="How new vectors are stored in the cache; float16 halves its size (vectors are read back as float32).",
)
@base_url_option
@api_key_env_option
@progress_option
@json_option
def embed_command(
    workspace: str,
    splits: tuple[str, ...],
    model: str,
    device: str,
    precision: str,
    engine: str,
    cache_dtype: str,
    base_url: str | None,
    api_key_env: str,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Embed WORKSPACE's documents and queries with the base model, caching every vector on disk.

    An interrupted run resumes: vectors already in the cache are not computed again.
    """
    from qadapter.embedding import embed_workspace
    from qadapter.encoders import get_encoder

    start = time.perf_counter()
    encoder = get_encoder(
        model, base_url=base_url, api_key_env=api_key_env, device=device, precision=precision
    )
    corpus, embedded = embed_workspace(
        workspace,
        list(splits) or None,
        model=encoder,
        progress=want_progress(progress),
        engine=engine,
        cache_dtype=cache_dtype,
    )
    queries_per_split = {name: len(q.query_ids) for name, q in embedded.items()}
    summary = {
        "model": encoder.name,
        "device": getattr(encoder, "device", None),
        "precision": getattr(encoder, "precision", None),
        "engine": engine,
        "dim": int(corpus.embeddings.shape[1]),
        "documents": len(corpus.doc_ids),
        "queries": queries_per_split,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        queries = ", ".join(f"{k}: {v}" for k, v in queries_per_split.items()) or "none"
        click.echo(
            f"{summary['documents']} documents and queries ({queries}) embedded with {encoder.name} in {summary['seconds']}s"
        )

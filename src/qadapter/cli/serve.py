"""``qadapter serve ADAPTER``: an OpenAI-compatible embeddings endpoint with the adapter applied to queries."""

from __future__ import annotations

import os
from pathlib import Path

import click

from qadapter.cli.options import base_url_option, device_option, precision_option
from qadapter.errors import QadapterError


@click.command("serve")
@click.argument("adapter", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on."
)
@click.option(
    "--model",
    default=None,
    help="Base embedding model. Default: the one recorded in the adapter (it must make vectors of the adapter's dimension).",
)
@base_url_option
@click.option(
    "--model-api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable with the key for an openai:NAME base model.",
)
@click.option(
    "--api-key-env",
    default="QADAPTER_API_KEY",
    show_default=True,
    help="Environment variable holding the key clients must send (Authorization: Bearer KEY). Unset: no key needed.",
)
@click.option(
    "--max-batch", default=64, show_default=True, type=click.IntRange(1), help="Most texts per encoder call."
)
@click.option(
    "--batch-wait-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1000),
    help="How long to wait for more requests to batch with the first (0: batch only what is already queued).",
)
@click.option(
    "--max-inputs", default=2048, show_default=True, type=click.IntRange(1), help="Most texts per request."
)
@click.option(
    "--max-chars", default=32_768, show_default=True, type=click.IntRange(1), help="Most characters per text."
)
@click.option(
    "--max-body-mb",
    default=16.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Largest request body.",
)
@click.option(
    "--max-queue",
    default=65_536,
    show_default=True,
    type=click.IntRange(1),
    help="Most texts waiting to be encoded; past it requests get 503 + Retry-After.",
)
@click.option(
    "--request-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help="Seconds a request may take (body, queue and encoding); past it: 503. "
    "A request expected to wait longer is refused at once with 503 + Retry-After.",
)
@click.option(
    "--idle-timeout",
    default=5,
    show_default=True,
    type=click.IntRange(1, 3600),
    help="Seconds before an idle keep-alive connection is closed.",
)
@click.option(
    "--docs/--no-docs",
    default=False,
    show_default=True,
    help="Serve /docs and /openapi.json (they need the API key too, when one is set).",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
@device_option
@precision_option
def serve_command(
    adapter: Path,
    host: str,
    port: int,
    model: str | None,
    base_url: str | None,
    model_api_key_env: str,
    api_key_env: str,
    max_batch: int,
    batch_wait_ms: float,
    max_inputs: int,
    max_chars: int,
    max_body_mb: float,
    max_queue: int,
    request_timeout: float,
    idle_timeout: int,
    docs: bool,
    access_log: bool,
    device: str,
    precision: str,
) -> None:
    """Serve ADAPTER as an OpenAI-compatible POST /v1/embeddings (plus GET /health).

    Queries get the adapter, documents the base model's vectors unchanged. Say which with the body field
    "input_type": "query" (default) or "document" (aliases "search_query", "search_document"); with the
    openai Python client:
    client.embeddings.create(model="qadapter", input=texts, extra_body={"input_type": "document"}).
    """
    from qadapter.serve import serve

    if not adapter.is_dir():
        raise QadapterError(f"{adapter}: adapter folder not found; train one with 'qadapter train'")
    api_key = os.environ.get(api_key_env) or None
    click.echo(
        f"qadapter serve: loading {adapter}; will listen on http://{host}:{port}/v1/embeddings"
        + (f" (API key from ${api_key_env})" if api_key else " (no API key)"),
        err=True,
    )
    serve(
        adapter,
        host=host,
        port=port,
        model=model,
        base_url=base_url,
        model_api_key_env=model_api_key_env,
        api_key=api_key,
        docs=docs,
        access_log=access_log,
        idle_timeout_s=idle_timeout,
        device=device,
        precision=precision,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_queue=max_queue,
        request_timeout_s=request_timeout,
    )

"""Options shared by several commands, so each flag means the same thing everywhere."""

from __future__ import annotations

import click

from qadapter.encoders import DEFAULT_MODEL

model_option = click.option(
    "--model",
    "model",
    default=DEFAULT_MODEL,
    show_default=True,
    envvar="QADAPTER_MODEL",
    help="Base embedding model: the bundled all-MiniLM-L6-v2, a local Sentence Transformers folder, "
    "or openai:NAME for an OpenAI-compatible /v1/embeddings endpoint.",
)
base_url_option = click.option(
    "--base-url", envvar="QADAPTER_EMBEDDINGS_BASE_URL", default=None, help="Base URL of the embeddings endpoint."
)
api_key_env_option = click.option(
    "--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Environment variable holding the API key."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout (for machines).")
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace the output if it exists.")

"""Options shared by several commands, so each flag means the same thing everywhere."""

from __future__ import annotations

import click

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.core.device import DEFAULT_PRECISION, PRECISIONS

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
    "--base-url",
    envvar="QADAPTER_EMBEDDINGS_BASE_URL",
    default=None,
    help="Base URL of the embeddings endpoint.",
)
llm_base_url_option = click.option(
    "--llm-base-url",
    envvar="QADAPTER_LLM_BASE_URL",
    default=None,
    help="Chat endpoint (OpenAI-compatible) of the LLM that writes queries, e.g. http://localhost:11434/v1 "
    "(Ollama), http://localhost:8000/v1 (vLLM). [env QADAPTER_LLM_BASE_URL; default: OPENAI_BASE_URL, "
    "else api.openai.com]",
)
api_key_env_option = click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable holding the API key.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout (for machines)."
)
overwrite_option = click.option("--overwrite", is_flag=True, help="Replace the output if it exists.")

progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress (default: on; a bar on a terminal, a line every few seconds otherwise).",
)


def want_progress(flag: bool | None) -> bool:
    """Progress is on unless ``--no-progress``: a bar on a terminal, log lines at a steady interval elsewhere."""
    return True if flag is None else flag


def load_config_file(path: str | None) -> dict:
    """Read a TOML config file (``[train]`` table or top-level keys); CLI flags override it."""
    if not path:
        return {}
    import tomllib

    from qadapter.errors import QadapterError

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise QadapterError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise QadapterError(f"{path}: not valid TOML ({exc})") from None
    return dict(data.get("train", data))


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from qadapter.core.device import DEVICES, is_device_name

    if not is_device_name(value):
        raise click.BadParameter(f"'{value}' is not one of {', '.join(DEVICES)} (or cuda:N)")
    return value.strip().lower()


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    envvar="QADAPTER_DEVICE",
    callback=_check_device,
    help="Where array work runs: auto (a CUDA or MPS GPU when one is visible, else the CPU), cpu, cuda, cuda:N, mps.",
)


precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS, case_sensitive=False),
    default=DEFAULT_PRECISION,
    show_default=True,
    envvar="QADAPTER_PRECISION",
    help="Dtype the local base model computes in. float16/bfloat16 are meant for a GPU (on a CPU without "
    "half-precision instructions they are several times slower); vectors stay float32 and are cached apart from "
    "float32 ones. Not for openai: models.",
)

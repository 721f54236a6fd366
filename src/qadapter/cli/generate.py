"""``qadapter generate``: synthetic training queries from any OpenAI-compatible chat endpoint, or offline."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from qadapter.cli.options import api_key_env_option, json_option, llm_base_url_option
from qadapter.errors import QadapterError
from qadapter.generate.config import DEFAULT_PER_CHUNK

#: CLI parameter -> GenerateConfig field, for every flag that maps one-to-one.
_FIELDS = (
    "model", "llm_base_url", "api_key_env", "per_chunk", "prompt", "examples", "num_examples", "concurrency", "rpm",
    "tpm", "max_retries", "timeout", "temperature", "max_tokens", "json_mode", "split", "test_fraction", "seed",
    "run", "dedup_threshold", "price_input", "price_output", "offline",
)  # fmt: skip


def _load_config_file(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise QadapterError(f"cannot read config file {path}: {exc}") from None
    section = data.get("generate", data)
    if not isinstance(section, dict):
        raise QadapterError(f"{path}: [generate] must be a table")
    if "base_url" in section and "llm_base_url" not in section:
        click.echo(
            f"note: {path}: 'base_url' is deprecated here; name it 'llm_base_url' (the chat endpoint)",
            err=True,
        )
        section["llm_base_url"] = section.pop("base_url")
    return section


def _llm_base_url(llm_base_url: str | None, base_url: str | None) -> str | None:
    """``--llm-base-url``, or the deprecated ``--base-url`` (unambiguous here: generate has no embeddings endpoint)."""
    if base_url is None:
        return llm_base_url
    if llm_base_url is not None and llm_base_url != base_url:
        raise QadapterError(
            f"--base-url {base_url!r} and --llm-base-url {llm_base_url!r} disagree; pass only --llm-base-url "
            "(--base-url is its deprecated name in generate)"
        )
    click.echo("note: --base-url in generate is deprecated; use --llm-base-url (the chat endpoint)", err=True)
    return base_url


@click.command(context_settings={"show_default": True})
@click.argument("workspace", type=click.Path(file_okay=False))
@click.option(
    "--model",
    envvar="QADAPTER_GENERATE_MODEL",
    default="",
    show_default=False,
    help="Chat model name on the endpoint (e.g. gpt-4o-mini, llama3.1:8b). [env QADAPTER_GENERATE_MODEL]",
)
@llm_base_url_option
@click.option(
    "--base-url",
    envvar="QADAPTER_GENERATE_BASE_URL",
    default=None,
    help="Deprecated name of --llm-base-url in this command.",
)
@api_key_env_option
@click.option("--per-chunk", type=int, default=DEFAULT_PER_CHUNK, help="Questions to ask for per chunk.")
@click.option(
    "--prompt",
    default="default",
    help="Preset (default, seed = the notebook's prompt) or a prompt file (.txt: the user message with "
    "$chunk, $title, $n, $examples; .toml: user/system/name/version).",
)
@click.option(
    "--examples",
    default=None,
    help="Real user queries for few-shot prompts: a text file (one a line), JSONL with 'text', or "
    "'workspace' (the workspace's non-generated queries).",
)
@click.option("--num-examples", type=int, default=5, help="Few-shot examples per request.")
@click.option("--concurrency", type=int, default=8, help="Requests in flight at once.")
@click.option("--rpm", type=float, default=None, help="Requests-per-minute limit.")
@click.option("--tpm", type=float, default=None, help="Tokens-per-minute limit.")
@click.option("--max-retries", type=int, default=6, help="Retries per request on 429/5xx/timeouts.")
@click.option("--timeout", type=float, default=60.0, help="Seconds to wait for one answer.")
@click.option("--temperature", type=float, default=0.7)
@click.option("--max-tokens", type=int, default=None, help="Cap on answer tokens.")
@click.option(
    "--json-mode", is_flag=True, help="Ask for response_format=json_object (if the server supports it)."
)
@click.option("--split", default="generated", help="Qrels split to write (qrels/<split>.tsv).")
@click.option(
    "--test-fraction",
    type=float,
    default=None,
    help="Also split by chunk into <split>-train / <split>-test with this test share.",
)
@click.option("--seed", type=int, default=0)
@click.option("--run", default=None, help="Run name (journal name); default: derived from model and prompt.")
@click.option(
    "--dedup-threshold",
    type=float,
    default=0.95,
    help="Cosine similarity above which questions of a chunk count as near-duplicates.",
)
@click.option("--no-dedup", is_flag=True, help="Skip near-duplicate removal (no embedding model needed).")
@click.option(
    "--price-input", type=float, default=None, help="USD per million prompt tokens, for a cost estimate."
)
@click.option("--price-output", type=float, default=None, help="USD per million completion tokens.")
@click.option("--limit", type=int, default=None, help="Only the first N chunks (try a prompt first).")
@click.option(
    "--documents-from",
    default=None,
    metavar="SPLIT",
    help="Only chunks judged relevant in qrels/SPLIT.tsv (e.g. train-docsplit), so test chunks stay unseen.",
)
@click.option(
    "--replace", is_flag=True, help="Drop the queries this run wrote before (after changing filters)."
)
@click.option(
    "--dry-run", is_flag=True, help="Show the first request and a token/cost estimate; send nothing."
)
@click.option(
    "--offline", is_flag=True, help="No LLM: pseudo-queries cut from the chunks (weaker, but free)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML file with generate settings (a [generate] table); flags override it.",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@json_option
@click.pass_context
def generate_command(ctx: click.Context, workspace: str, config_file: str | None, base_url: str | None,
                     no_dedup: bool, limit: int | None, documents_from: str | None, replace: bool, dry_run: bool,
                     no_progress: bool, as_json: bool, **params: Any) -> None:  # fmt: skip
    """Write synthetic queries and qrels for every chunk of WORKSPACE.

    Every answer is saved as it arrives, keyed by what was asked (model, chunk, prompt); after Ctrl-C or a crash,
    re-run and only the chunks without an answer are requested, whatever the endpoint's spelling or limits. A
    second writer into the same workspace stops at once with the running one's pid.
    """
    from qadapter.generate import GenerateConfig, generate
    from qadapter.generate.summary import describe

    params["llm_base_url"] = _llm_base_url(params["llm_base_url"], base_url)
    settings: dict[str, Any] = _load_config_file(config_file) if config_file else {}
    for name in _FIELDS:
        source = ctx.get_parameter_source(name)
        given = source is not click.core.ParameterSource.DEFAULT or (name == "llm_base_url" and base_url)
        if name not in settings or given:
            settings[name] = params[name]
    if no_dedup:
        settings["dedup_threshold"] = None
    if limit is not None and limit <= 0:
        raise QadapterError(f"--limit must be positive, got {limit}")
    config = GenerateConfig.from_dict(settings)
    documents = None
    if documents_from is not None:
        from qadapter.data import Workspace

        qrels = Workspace(workspace).qrels(documents_from)
        documents = {doc for judged in qrels.values() for doc, score in judged.items() if score > 0}
    try:
        summary = generate(
            workspace,
            config,
            dry_run=dry_run,
            limit=limit,
            documents=documents,
            replace=replace,
            progress=not no_progress,
        )
    except KeyboardInterrupt:
        # click turns Ctrl-C into a bare "aborted"; say what matters here: nothing paid for is lost
        click.echo(
            "interrupted: every answer received so far is saved; re-run the same command to continue",
            err=True,
        )
        raise
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in describe(summary):
            click.echo(line)
    if summary.failed:
        first, error = next(iter(summary.failed.items()))
        raise QadapterError(
            f"{len(summary.failed)} of {summary.requested} chunks failed (first: {first}: {error}); everything else "
            "is saved; re-run the same command to retry only those"
        )

"""The ``qadapter`` command line. Each command lives in its own module and is imported only when it runs,
so ``qadapter --help`` is instant. Every user error prints as one line (``error: ...``) and exits with status 2."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from qadapter.version import __version__

#: command name -> (module, attribute, one-line help). Keep the help here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "qadapter.cli.run",
        "run_command",
        "Whole job: ingest/import -> embed -> train -> evaluate -> report.",
    ),
    "demo": ("qadapter.cli.demo", "demo_command", "Run the whole job offline on Python's own documentation."),
    "ingest": (
        "qadapter.cli.ingest",
        "ingest_command",
        "Chunk PDF, Markdown, text and HTML files into a workspace.",
    ),
    "import": (
        "qadapter.cli.importing",
        "import_command",
        "Import a BEIR folder, the notebook JSON, LlamaIndex JSON or a query log.",
    ),
    "split": (
        "qadapter.cli.split",
        "split_command",
        "Make deterministic train/test qrels splits (by query or by document).",
    ),
    "generate": (
        "qadapter.cli.generate",
        "generate_command",
        "Write synthetic queries for each chunk with an LLM (or offline).",
    ),
    "embed": (
        "qadapter.cli.embed",
        "embed_command",
        "Embed corpus and queries once into the workspace cache.",
    ),
    "train": ("qadapter.cli.train", "train_command", "Train a query adapter on cached embeddings."),
    "evaluate": (
        "qadapter.cli.evaluate",
        "evaluate_command",
        "Score the base model and the adapter on the same queries.",
    ),
    "export": (
        "qadapter.cli.export",
        "export_command",
        "Export an adapter (e.g. as a Sentence Transformers model folder).",
    ),
    "serve": (
        "qadapter.cli.serve",
        "serve_command",
        "Serve an OpenAI-compatible /v1/embeddings endpoint with the adapter.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attr)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qadapter")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """qadapter: better retrieval for your RAG app with a query-side adapter, without re-embedding your corpus."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # progress lines (qadapter.core.progress) when stderr is not a terminal: shown at the default verbosity
    logging.getLogger("qadapter.progress").setLevel(min(level, logging.INFO))


def main(argv: list[str] | None = None) -> Any:
    from qadapter.errors import QadapterError

    try:
        return cli.main(args=argv, prog_name="qadapter", standalone_mode=False)
    except QadapterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        # an optional dependency that a command needs: name the extra that brings it
        from qadapter.core.extras import extra_for

        known = extra_for(exc.name or "")
        if known is None:
            raise
        package, extra = known
        click.echo(
            f"error: this command needs the package '{package}', which is not installed; "
            f"install it with: pip install 'qadapter[{extra}]'",
            err=True,
        )
        sys.exit(2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # click turns Ctrl-C into Abort; every stage saves as it goes, so the same command continues
        click.echo("interrupted; progress so far is saved, re-run the same command to continue", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        hint = (
            f" (see 'qadapter {exc.ctx.info_name} --help')"
            if exc.ctx is not None and exc.ctx.info_name != "qadapter"
            else ""
        )
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)

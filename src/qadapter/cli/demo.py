"""``qadapter demo``: the whole job, offline, on text every Python installation ships (the standard library's docs)."""

from __future__ import annotations

import click

from qadapter.cli.options import json_option, progress_option, want_progress


@click.command("demo")
@click.option(
    "-o",
    "--output",
    "workspace",
    default="demo-workspace",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Workspace folder to create (reused if it exists).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@progress_option
@json_option
def demo_command(workspace: str, seed: int, progress: bool | None, as_json: bool) -> None:
    """Build a retrieval task from Python's own documentation (summary line = query, rest of the docstring =
    document, split by document), train an adapter on it and compare it with the base model on held-out documents."""
    from pathlib import Path

    from qadapter.cli.run import print_run
    from qadapter.demo import build_stdlib_workspace
    from qadapter.pipeline import run

    built = None
    if not (Path(workspace) / "corpus.jsonl").is_file():
        ws = build_stdlib_workspace(workspace, seed=seed, overwrite=Path(workspace).exists())
        built = f"built {ws.path} from the standard library's docstrings ({len(ws.corpus())} documents)"
    result = run(workspace, seed=seed, progress=want_progress(progress))
    if built:
        result.steps[0] = built
    print_run(result, as_json)
    if not as_json and result.report:
        click.echo(f"\nreport: {result.report}")

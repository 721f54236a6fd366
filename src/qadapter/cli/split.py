"""``qadapter split WS``: deterministic train/test qrels splits, by query or by document."""

from __future__ import annotations

import json

import click

from qadapter.cli.options import json_option, overwrite_option


@click.command("split")
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option("--from", "source_split", default="all", show_default=True, help="Qrels split to divide.")
@click.option(
    "--by",
    type=click.Choice(["query", "document"]),
    default="query",
    show_default=True,
    help="Hold out queries, or hold out documents with all their queries (tests documents unseen in training).",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same split.")
@click.option(
    "--names",
    default=None,
    help="Names of the two output splits (default: train,test for --from all, else FROM-train,FROM-test).",
)
@overwrite_option
@json_option
def split_command(
    workspace: str,
    source_split: str,
    by: str,
    test_fraction: float,
    seed: int,
    names: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Split WORKSPACE's qrels/<from>.tsv into two splits (train/test, or <from>-train/<from>-test).

    \b
    Examples:
      qadapter split ws                       # 80/20 by query -> train, test
      qadapter split ws --from log            # real logged queries -> log-train, log-test
      qadapter split ws --by document --names train-docsplit,test-docsplit
    """
    from qadapter.data import Workspace
    from qadapter.data.splits import default_names, make_splits
    from qadapter.errors import QadapterError

    parts = tuple(n.strip() for n in names.split(",")) if names else default_names(source_split)
    if len(parts) != 2:
        raise QadapterError(f"--names takes two comma-separated split names like 'train,test', got '{names}'")
    result = make_splits(
        Workspace(workspace),
        source_split,
        by=by,  # type: ignore[arg-type]
        test_fraction=test_fraction,
        seed=seed,
        names=(parts[0], parts[1]),
        overwrite=overwrite,
    )
    counts = {name: len(qrels) for name, qrels in result.items()}
    if as_json:
        click.echo(json.dumps({"workspace": workspace, "by": by, "seed": seed, "queries": counts}))
        return
    click.echo(
        f"split {source_split} by {by} (seed {seed}): "
        + ", ".join(f"{name} {n} queries" for name, n in counts.items())
    )

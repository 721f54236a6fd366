"""``qadapter train WS``: fit a query adapter on cached embeddings and save it.

Choices (recipes, kinds, objectives) and their help come from the registries; options come from defaults, then a
``--config`` TOML file, then the flags given on the command line, through one typed path
(:mod:`qadapter.train.options`)."""

from __future__ import annotations

import json
from typing import Any

import click
from click.core import ParameterSource

from qadapter.adapters.kinds import TRAINABLE_KINDS
from qadapter.cli.options import (
    device_option,
    json_option,
    model_option,
    overwrite_option,
    precision_option,
    progress_option,
    want_progress,
)
from qadapter.core.device import PRECISIONS
from qadapter.train.objectives import OBJECTIVES
from qadapter.train.recipes import RECIPES

#: flags that are train options or TrainConfig fields of the same name, merged over the --config file
MERGED_FLAGS = (
    "split",
    "recipe",
    "negatives",
    "kind",
    "epochs",
    "lr",
    "temperature",
    "objective",
    "pseudo_queries",
    "seed",
    "learning_curve",
    "real_weight",
    "device",
    "compute_dtype",
)


@click.command("train")
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--split",
    multiple=True,
    default=["train"],
    show_default=True,
    help="Qrels split to train on; repeat to merge several (--split generated-train --split log-train).",
)
@click.option("-o", "--output", required=True, type=click.Path(), help="Adapter folder to write.")
@click.option(
    "--recipe",
    type=click.Choice(list(RECIPES)),
    default="default",
    show_default=True,
    help="; ".join(f"{r.name}: {r.help}" for r in RECIPES.values()) + ".",
)
@model_option
@click.option(
    "--negatives",
    type=click.Path(exists=True),
    default=None,
    help="Out-of-domain negatives for --recipe seed: a workspace folder or documents to ingest (e.g. a PDF).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="TOML file of training options ([train] table or top-level keys; flags given here override it).",
)
@click.option(
    "--kind",
    type=click.Choice(list(TRAINABLE_KINDS)),
    default=None,
    help="Adapter kind; with the default recipe, only candidates of this kind (and the identity) are tried.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option(
    "--objective",
    type=click.Choice(list(OBJECTIVES)),
    default="auto",
    show_default=True,
    help="default recipe: " + "; ".join(f"{name} = {text}" for name, text in OBJECTIVES.items()) + ".",
)
@click.option(
    "--pseudo-queries",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Offline pseudo-queries (headings, keywords, sentences) added per training document; 0 turns them off.",
)
@click.option(
    "--real-weight",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Weight of real queries (not written by a generator) against synthetic ones, as whole repeats in fits.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--learning-curve/--no-learning-curve",
    default=True,
    show_default=True,
    help="Record validation metric vs training pairs.",
)
@device_option
@precision_option
@click.option(
    "--compute-dtype",
    type=click.Choice(PRECISIONS, case_sensitive=False),
    default=None,
    help="Dtype training's forward pass and loss compute in (autocast; default float32). bfloat16/float16 are meant "
    "for a GPU; the adapter's weights stay float32.",
)
@progress_option
@overwrite_option
@json_option
@click.pass_context
def train_command(
    ctx: click.Context,
    workspace: str,
    output: str,
    model: str,
    config_file: str | None,
    precision: str,
    progress: bool | None,
    overwrite: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Train an adapter on WORKSPACE's qrels/<split>.tsv (embeddings come from the workspace cache).

    \b
    Examples:
      qadapter train ws -o my-adapter
      qadapter train ws --split generated-train --split log-train --real-weight 2 -o my-adapter
      qadapter train ws --recipe seed --negatives other.pdf -o seed-adapter
    """
    from qadapter.cli.options import load_config_file
    from qadapter.core.device import DEFAULT_PRECISION
    from qadapter.encoders import Encoder, get_encoder
    from qadapter.train import train
    from qadapter.train.options import check_keys

    values = load_config_file(config_file)
    check_keys(values)
    for name in MERGED_FLAGS:
        given = ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
        if flags[name] is not None and (given or name not in values):
            values[name] = flags[name]
    if isinstance(values.get("split"), tuple) and len(values["split"]) == 1:
        values["split"] = values["split"][0]
    base: str | Encoder = model  # train() builds a float32 encoder on the merged device itself
    if precision != DEFAULT_PRECISION:
        base = get_encoder(model, device=values.get("device") or "auto", precision=precision)
    result = train(
        workspace,
        output=output,
        model=base,
        overwrite=overwrite,
        progress=want_progress(progress),
        **values,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "adapter": str(result.path),
                    "recipe": result.recipe,
                    "chosen": result.chosen,
                    "reason": result.reason,
                    "seconds": round(result.seconds, 2),
                    "candidates": result.selection.candidates if result.selection else [],
                }
            )
        )
        return
    _print_summary(result)


def _print_summary(result: Any) -> None:
    if result.selection and result.selection.candidates:
        click.echo("candidates (validation gain over the base model):")
        for row in result.selection.candidates:
            gains = ", ".join(f"{k} {v:+.4f}" for k, v in row["gain"].items())
            mark = "*" if row["chosen"] else " "
            click.echo(f" {mark} {row['name']:<12} {gains}  ({row['seconds']:.1f}s)")
    click.echo(f"chose {result.chosen}: {result.reason}")
    click.echo(f"saved {result.path} ({result.seconds:.1f}s)")

"""``qadapter train WS``: fit a query adapter on cached embeddings and save it."""

from __future__ import annotations

import json

import click

from qadapter.cli.options import json_option, model_option, overwrite_option, progress_option, want_progress


@click.command("train")
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="train", show_default=True, help="Qrels split to train on.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Adapter folder to write.")
@click.option(
    "--recipe",
    type=click.Choice(["default", "contrastive", "seed"]),
    default="default",
    show_default=True,
    help="default: choose among adapters (and the identity) on validation data; contrastive: one linear adapter; "
    "seed: the original notebook (random-init linear, triplet loss, random negatives).",
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
    help="TOML file of training options.",
)
@click.option(
    "--kind",
    type=click.Choice(["linear", "lowrank", "mlp"]),
    default=None,
    help="Adapter kind (single-fit recipes).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option(
    "--objective",
    type=click.Choice(["auto", "balanced", "seen", "covered"]),
    default="auto",
    show_default=True,
    help="default recipe: balanced = equal weight to queries about documents with and without training queries, "
    "refusing maps that hurt the latter; seen = maximise gains on documents that have training queries, refusing "
    "maps that hurt the others; covered = weigh both by their share of the corpus, reporting (not refusing) harm to "
    "documents without training queries; auto = covered when training queries cover at least 95% of the corpus, "
    "else balanced.",
)
@click.option(
    "--pseudo-queries",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Offline pseudo-queries (headings, keywords, sentences) added per training document; 0 turns them off.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--learning-curve/--no-learning-curve",
    default=True,
    show_default=True,
    help="Record validation metric vs training pairs.",
)
@progress_option
@overwrite_option
@json_option
def train_command(
    workspace: str,
    split: str,
    output: str,
    recipe: str,
    model: str,
    negatives: str | None,
    config_file: str | None,
    kind: str | None,
    epochs: int | None,
    lr: float | None,
    temperature: float | None,
    objective: str,
    pseudo_queries: int,
    seed: int,
    learning_curve: bool,
    progress: bool | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Train an adapter on WORKSPACE's qrels/<split>.tsv (embeddings come from the workspace cache).

    \b
    Examples:
      qadapter train ws -o my-adapter
      qadapter train ws --recipe seed --negatives other.pdf -o seed-adapter
    """
    from qadapter.cli.options import load_config_file
    from qadapter.train import train

    overrides = load_config_file(config_file)
    for key, value in (("kind", kind), ("epochs", epochs), ("lr", lr), ("temperature", temperature)):
        if value is not None:
            overrides[key] = value
    result = train(
        workspace,
        split,
        output=output,
        recipe=recipe,
        model=model,
        negatives=negatives,
        seed=seed,
        objective=objective,
        pseudo_queries=pseudo_queries,
        learning_curve=learning_curve,
        overwrite=overwrite,
        progress=want_progress(progress),
        **overrides,
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
    if result.selection and result.selection.candidates:
        click.echo("candidates (validation gain over the base model):")
        for row in result.selection.candidates:
            gains = ", ".join(f"{k} {v:+.4f}" for k, v in row["gain"].items())
            mark = "*" if row["chosen"] else " "
            click.echo(f" {mark} {row['name']:<12} {gains}  ({row['seconds']:.1f}s)")
    click.echo(f"chose {result.chosen}: {result.reason}")
    click.echo(f"saved {result.path} ({result.seconds:.1f}s)")

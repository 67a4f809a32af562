"""``pixelgen train RECIPE``: train a model from a recipe (path or shipped name)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import load_recipe
from ..train import train
from .app import app, console


@app.command("train")
def train_command(
    recipe: str = typer.Argument(
        ..., help="Recipe: a YAML path, or a shipped recipe's name (see `pixelgen recipes`)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a recipe value, e.g. --set train.lr=3e-4 (repeatable)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory (default: runs/<recipe>-<date>-<time>)."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue from RUN/checkpoints/last.pt (default RUN: the latest run of this recipe).",
    ),
    download: bool = typer.Option(
        False,
        "--download",
        help="Fetch the data set from where it is published if it is not found (the same as "
        "--set data.download=true).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a model; writes checkpoints, metrics.jsonl, curve.png and sample grids."""
    r = load_recipe(recipe, [*set_, *(["data.download=true"] if download else [])])
    for note in r.notes:
        console.print(f"note: {note}")
    result = train(r, run_dir=out, resume=resume, show_progress=progress, log=console.print)
    if result.interrupted:
        raise typer.Exit(130)

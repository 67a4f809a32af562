"""Options that several commands share, declared once (typer reads each as a default)."""

from __future__ import annotations

import typer

SEED = typer.Option(None, "--seed", help="Random seed (default 0).")
TEMPERATURE = typer.Option(
    None, "--temperature", help="Divides the logits: < 1 sharper, > 1 more varied (default 1)."
)
METHOD = typer.Option(
    None,
    "--method",
    help="fast (cached, exact) or naive (one forward pass per value); default fast.",
)
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
ZOOM = typer.Option(
    None,
    "--zoom",
    min=1,
    help="Enlarge each image K times in the grid, nearest neighbour (default: enough for "
    "112 pixels, e.g. 4 for 28x28). Single-image PNGs stay at their own size.",
)

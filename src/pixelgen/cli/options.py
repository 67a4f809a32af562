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

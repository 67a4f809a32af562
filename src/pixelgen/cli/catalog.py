"""``pixelgen models`` and ``pixelgen recipes``: what the registry and the package hold."""

from __future__ import annotations

import inspect

from rich.table import Table

from ..config import shipped_recipes
from ..data import list_datasets
from ..registry import list_models, model_doc, model_hparams
from .app import app, console


@app.command("models")
def models_command() -> None:
    """List the registered models with their hyperparameters and defaults."""
    table = Table(title="models (pixelgen.create_model(name, **hparams))")
    table.add_column("name", style="bold")
    table.add_column("what it is")
    table.add_column("hyperparameters (defaults)")
    for name in list_models():
        hp = ", ".join(
            f"{k}={'<required>' if v is inspect.Parameter.empty else v}"
            for k, v in model_hparams(name).items()
        )
        table.add_row(name, model_doc(name), hp)
    console.print(table)


@app.command("recipes")
def recipes_command() -> None:
    """List the shipped recipes (usable by name: `pixelgen train quick_rowlstm`)."""
    table = Table(title="shipped recipes")
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, desc in shipped_recipes():
        table.add_row(name, desc)
    console.print(table)


@app.command("datasets")
def datasets_command() -> None:
    """List the data sets a recipe's data.name can use."""
    table = Table(title="data sets")
    table.add_column("data.name", style="bold")
    table.add_column("description")
    for name, desc in list_datasets():
        table.add_row(name, desc)
    console.print(table)

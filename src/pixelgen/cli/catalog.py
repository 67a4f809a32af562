"""``pixelgen models``, ``recipes``, ``datasets`` and ``pretrained``: what the registry and
the package hold."""

from __future__ import annotations

import inspect
import json

import typer
from rich import box
from rich.table import Table

from ..config import recipe_schema, shipped_recipes
from ..data import list_datasets
from ..pretrained import shipped
from ..registry import list_models, model_doc, model_hparams
from .app import app, console


@app.command("models")
def models_command() -> None:
    """List the registered models with their hyperparameters and defaults."""
    table = Table(title="models (pixelgen.create_model(name, **hparams))")
    table.add_column("name", style="bold")
    table.add_column("what it is")
    table.add_column("hyperparameters (defaults)")
    for name in list_models(composite=True):
        hp = ", ".join(
            f"{k}={'<required>' if v is inspect.Parameter.empty else v}"
            for k, v in model_hparams(name).items()
        )
        table.add_row(name, model_doc(name), hp)
    console.print(table)


@app.command("recipes")
def recipes_command(
    schema: bool = typer.Option(
        False,
        "--schema",
        help="Print the JSON Schema of a recipe file instead (for editors, e.g. the YAML "
        "language server), on stdout.",
    ),
) -> None:
    """List the shipped recipes (usable by name: `pixelgen train quick_rowlstm`)."""
    if schema:
        typer.echo(json.dumps(recipe_schema(), indent=2))
        return
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


@app.command("pretrained")
def pretrained_command() -> None:
    """List the models shipped with pixelgen (usable by name wherever a checkpoint is asked
    for: `pixelgen sample mnist_diagonal_bilstm`)."""
    models = shipped()
    data_of = {m.name: m.results.get("data", "?").removesuffix(" test") for m in models}
    data = set(data_of.values())
    # One data set for all goes in the title, so the table fits an 80-column terminal.
    one = data.pop() if len(data) == 1 else None
    title = "shipped pretrained models" + (f": test NLL in nats on {one}" if one else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    columns = ["name", "model", *([] if one else ["data"]), "test NLL", "params",
               "trained on"]  # fmt: skip
    for column in columns:
        table.add_column(column, style="bold" if column == "name" else None, no_wrap=True)
    for m in models:
        r = m.results
        table.add_row(
            m.name,
            m.model_name,
            *([] if one else [data_of[m.name]]),
            f"{r['test_nll_nats']:.2f} ± {r['test_nll_nats_stderr']:.2f}",
            f"{m.parameters:,}",
            f"{_count(r['images_seen'])} img, {r['train_hours']:.1f} h",
        )
    console.print(table)


def _count(n: int) -> str:
    """``960k``, ``1.5M``: a count short enough for the listing's 80 columns."""
    return f"{n / 1e6:.3g}M" if n >= 1_000_000 else f"{n / 1000:.3g}k"

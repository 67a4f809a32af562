"""``pixelgen runs [ROOT]``: the training runs under a folder; ``pixelgen plot RUN...``: their
validation curves on one figure."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from ..checkpoint import runs_root
from ..runs import RunInfo, list_runs, plot_runs
from .app import app, console

_STATE_STYLE = {"finished": "green", "running": "cyan", "stopped": "yellow", "damaged": "red"}


@app.command("runs")
def runs_command(
    root: Path | None = typer.Argument(
        None,
        help="Folder holding run directories, or one run directory (default: runs/, or "
        "$PIXELGEN_RUNS, where pixelgen train writes).",
        show_default=False,
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the runs as a JSON list on stdout instead of a table."
    ),
) -> None:
    """List the training runs under ROOT: recipe, model, data, steps, images seen, best
    validation NLL, last test evaluation (pixelgen eval), state and directory.

    The state is finished (last.pt reached the run's last step), running (a live pixelgen
    train holds the run's lock), stopped (resume it with pixelgen train RECIPE --resume
    --out DIR) or damaged (a file of the run cannot be read; the reason is printed).
    Checkpoints are read without verifying their tensors, so listing stays fast."""
    given = root is not None
    root = root if given else runs_root()
    if not given and not root.exists():
        runs: list[RunInfo] = []
    else:
        runs = list_runs(root)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in runs], indent=2))
    if not runs:
        console.print(
            f"no runs under {root}/ yet: pixelgen train quick_rowlstm starts one", soft_wrap=True
        )
        return
    if as_json:
        return
    table = _table(root, runs)
    natural = Measurement.get(console, console.options.update(max_width=10**4), table).maximum
    if natural <= console.width:
        console.print(table)
    else:  # the table would fold its names into fragments: a few lines per run instead
        console.print(f"runs under {escape(str(root))}", style="italic", soft_wrap=True)
        for r in runs:
            console.print(_lines(r), soft_wrap=True)
    for r in runs:
        for problem in r.problems:
            console.print(f"[red]{r.state}:[/] {escape(problem)}", soft_wrap=True)


def _table(root: Path, runs: list[RunInfo]) -> Table:
    """One row per run; related values share a cell, so that it fits a narrow terminal."""
    table = Table(title=f"runs under {root}", box=box.SIMPLE_HEAD)
    table.add_column("recipe", style="bold", overflow="fold", min_width=6)
    table.add_column("model, data", overflow="fold", min_width=6)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("best valid", no_wrap=True)
    table.add_column("last test", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("directory", overflow="fold", min_width=6)
    for r in runs:
        style = _STATE_STYLE.get(r.state, "")
        seen = "" if r.images_seen is None else f"\n{r.images_seen:,} images"
        table.add_row(
            escape(r.recipe or "?"),
            escape(f"{r.model or '?'}\n{r.data or '?'}"),
            _steps(r) + seen,
            _best(r),
            _test(r),
            f"[{style}]{r.state}[/]",
            escape(str(r.path)),
        )
    return table


def _lines(r: RunInfo) -> str:
    """A run in three lines: recipe, state and directory; model and data; the numbers."""
    style = _STATE_STYLE.get(r.state, "")
    seen = "" if r.images_seen is None else f" ({r.images_seen:,} images)"
    numbers = f"steps {_steps(r)}{seen}; best valid {_inline(_best(r))}; last test "
    numbers += _inline(_test(r))
    return (
        f"[bold]{escape(r.recipe or '?')}[/]  [{style}]{r.state}[/]  {escape(str(r.path))}\n"
        f"  {escape(r.model or '?')} on {escape(r.data or '?')}\n  {numbers}"
    )


def _inline(cell: str) -> str:
    """A table cell's second line in brackets after its first."""
    first, *rest = cell.split("\n")
    return first + "".join(f" ({line})" for line in rest)


def _steps(r: RunInfo) -> str:
    if r.step is None:
        return "-"
    return f"{r.step:,}" if r.total is None else f"{r.step:,}/{r.total:,}"


def _best(r: RunInfo) -> str:
    if r.best_valid_nats is None:
        return "-"
    text = f"{r.best_valid_nats:.2f} nats"
    if r.best_valid_bits_per_dim is not None:
        text += f"\n{r.best_valid_bits_per_dim:.4f} bpd"
    return text


def _test(r: RunInfo) -> str:
    t = r.test
    if not t:
        return "-"
    text = f"{t['nll_nats']:.2f}"
    if isinstance(t.get("nll_nats_stderr"), (int, float)):
        text += f" ± {t['nll_nats_stderr']:.2f}"
    if isinstance(t.get("num_images"), int):
        text += f"\n{t['num_images']:,} images"
    return text


@app.command("plot")
def plot_command(
    runs: list[Path] = typer.Argument(
        ..., help="Run directories (or names of runs under runs/, $PIXELGEN_RUNS)."
    ),
    out: Path = typer.Option(Path("curves.png"), "--out", "-o", help="PNG to write."),
    x_axis: str = typer.Option(
        "images", "--x", help="The x axis: images (images seen, step x batch size) or step."
    ),
    bits_per_dim: bool = typer.Option(
        False, "--bits-per-dim", help="Plot bits/dim even where every run has 2-level data."
    ),
) -> None:
    """Draw the validation curves of several runs on one figure (legend: the run names),
    e.g. to compare an ablation: NLL in nats when every run's data has 2 levels (binarized
    MNIST), else bits/dim, against the images seen."""
    drawn = plot_runs([_run_path(p) for p in runs], out, x=x_axis, bits_per_dim=bits_per_dim)
    n = len(drawn["runs"])
    console.print(
        f"{drawn['out']}: validation NLL ({drawn['unit']}) of {n} run{'s' * (n != 1)} "
        f"against {drawn['x']}: {', '.join(drawn['runs'])}",
        soft_wrap=True,
    )


def _run_path(arg: Path) -> Path:
    """``arg``, or the run of that name under the runs root when ``arg`` does not exist."""
    if not arg.exists() and len(arg.parts) == 1 and (runs_root() / arg).is_dir():
        return runs_root() / arg
    return arg

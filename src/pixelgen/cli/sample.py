"""``pixelgen sample``: draw a batch of images from a checkpoint into a PNG grid."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from ..progress import make_progress
from ..sampling.api import Source, generate_samples, open_checkpoint, parse_size
from . import options
from .app import app, console


@contextmanager
def row_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar over image rows; yields the ``progress(done, total)`` callback."""
    bar = make_progress("rate", console=console)
    task = bar.add_task(description, total=None, rate="rows")

    def update(done: int, total: int) -> None:
        # Shown from the first finished row, so errors found while preparing (bad
        # options, unreadable images) are not printed under an empty bar.
        bar.start()
        bar.update(task, completed=done, total=total)
        speed = bar.tasks[task].speed
        bar.update(task, rate=f"rows {speed:.2f}/s" if speed else "rows")

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def announce(source: Source) -> None:
    if source.note:
        console.print(source.note, soft_wrap=True)


@app.command("sample")
def sample_command(
    checkpoint: Path | None = typer.Argument(
        None,
        help="Checkpoint file, run directory, .safetensors export or shipped model name "
        "(default: the most recent run, else the best shipped model).",
    ),
    n: int | None = typer.Option(None, "-n", min=1, help="Number of images (default 16)."),
    out: Path = typer.Option(Path("samples.png"), "--out", "-o", help="PNG grid to write."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Also write each image as DIR/sample_<k>.png."
    ),
    seed: int | None = options.SEED,
    temperature: float | None = options.TEMPERATURE,
    method: str | None = options.METHOD,
    nrow: int | None = typer.Option(None, min=1, help="Images per grid row."),
    size: str | None = typer.Option(None, help="Image size HxW (default: the training data's)."),
    zoom: int | None = options.ZOOM,
    device: str = options.DEVICE,
    classes: str | None = typer.Option(
        None,
        "--class",
        help="Class-conditional models: the class to draw (a number or a name), or 'all' for "
        "-n of every class (default 8), one labelled row per class. Default: the classes in turn.",
    ),
) -> None:
    """Sample images from a trained model into a PNG grid (defaults: the recipe's sample:)."""
    source = open_checkpoint(checkpoint)
    announce(source)
    with row_progress("sampling") as progress:
        result = generate_samples(
            source,
            n=n,
            size=parse_size(size) if size is not None else None,
            seed=seed,
            temperature=temperature,
            method=method,
            nrow=nrow,
            device=device,
            out=out,
            out_dir=out_dir,
            progress=progress,
            zoom=zoom,
            classes=classes,
        )
    s = result.settings
    h, w = s["size"]
    drawn = s.get("classes")
    given = ""
    if drawn == "all":
        given = f", {s['nrow']} of each class, a row per class"
    elif drawn is not None:
        given = f", class {drawn[0]}" if len(set(drawn)) == 1 else ", the classes in turn"
    console.print(
        f"{s['n']} samples {h}x{w} ({s['method']}, seed {s['seed']}, "
        f"temperature {s['temperature']:g}, {s['device']}{given})"
    )
    console.print(f"grid: {result.files[0]} (zoom {s['zoom']}x)", soft_wrap=True)
    if out_dir is not None:
        console.print(
            f"images: {out_dir}/sample_*.png ({len(result.files) - 1} files)", soft_wrap=True
        )

"""``pixelgen download NAME``: fetch a data set's published files, checksums verified."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ..data.download import download
from .app import app, console


@app.command("download")
def download_command(
    name: str = typer.Argument(
        ...,
        help="mnist, fashion_mnist, binarized_mnist (the standard fixed binarization), "
        "cifar10; imagenet32 and imagenet64 say how to get them.",
    ),
    root: Path | None = typer.Option(
        None,
        "--root",
        help="Folder to put the files in (default: $PIXELGEN_DATA, else ~/.cache/pixelgen), "
        "in the data set's own subfolder.",
    ),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        help="Base URL that replaces the published host ($PIXELGEN_MIRROR); the file names "
        "and checksums stay the published ones.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Download a data set into the search path, verifying each file's published checksum;
    an interrupted download continues where it stopped."""
    folder = download(name, root=root, mirror=mirror, progress=progress, log=console.print)
    console.print(escape(f"{name}: ready in {folder}"))

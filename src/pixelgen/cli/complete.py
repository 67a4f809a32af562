"""``pixelgen complete``: fill in a hidden part of images with a checkpoint's model."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import pretrained
from ..errors import ConfigError
from ..images import OCCLUSION_MODES
from ..sampling.api import complete_images, complete_split, open_checkpoint
from . import options
from .app import app, console
from .sample import announce, row_progress

_MODES = ", ".join(
    (*OCCLUSION_MODES, "random:P (seeded by --seed)", "or a mask PNG (white = hidden)")
)

_HELP = (
    "Complete images: hide part of each (--occlude) and sample it from the model, "
    "writing OUT/<stem>_grid.png (a row per image under a caption: original, occluded, "
    "samples; enlarged by --zoom) and OUT/<stem>_<k>.png (each completion, its own size).\n\n"
    "Inputs are converted to the model's format (colours, size, levels) with a note. Values "
    "are drawn in raster order, each conditioned on everything before it: known values "
    "further down the image are kept but cannot inform what is drawn above them. The "
    "checkpoint is the --checkpoint/-c option, or, as in the other commands, the first "
    "argument when that is a run directory, a .pt or .safetensors file or a shipped model: "
    "pixelgen complete runs/RUN --occlude bottom-half a.png.\n\n"
    "--split completes images of the checkpoint's own data set instead of files "
    "(OUT/test_00000_grid.png, ...); a class-conditional model then completes each under "
    "its true class unless --class is given."
)


@app.command("complete", help=_HELP)
def complete_command(
    images: list[Path] | None = typer.Argument(
        None, help="Images to complete, after an optional checkpoint (see above)."
    ),
    occlude: str = typer.Option(..., "--occlude", help=f"What to hide: {_MODES}."),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        "-c",
        help="Checkpoint file, run directory, .safetensors export or shipped model name "
        "(default: the most recent run, else the best shipped model).",
    ),
    samples: int = typer.Option(4, min=1, help="Completions per image."),
    out: Path = typer.Option(Path("completions"), "--out", "-o", help="Output directory."),
    seed: int | None = options.SEED,
    temperature: float | None = options.TEMPERATURE,
    method: str | None = options.METHOD,
    zoom: int | None = options.ZOOM,
    device: str = options.DEVICE,
    classes: str | None = typer.Option(
        None,
        "--class",
        help="Class-conditional models: the class to complete under (a number or a name); "
        "needed for image files, which carry no class; with --split it replaces each "
        "image's own class.",
    ),
    split: str | None = typer.Option(
        None,
        "--split",
        help="Complete images of the checkpoint's own data set instead of files: test, "
        "valid or train.",
    ),
    max_images: int | None = typer.Option(
        None, "--max-images", min=1, help="With --split: how many images (default 8)."
    ),
    start: int | None = typer.Option(
        None, "--start", min=0, help="With --split: the index of the first image (default 0)."
    ),
    data_root: str | None = typer.Option(
        None,
        "--data-root",
        help="With --split: where the data set lives, if not where training found it.",
    ),
    download: bool = typer.Option(
        False, "--download", help="With --split: fetch the data set if it is not found."
    ),
) -> None:
    images = list(images or [])
    if checkpoint is None and images and _names_a_checkpoint(images[0]):
        checkpoint, images = images[0], images[1:]
    _check_inputs(images, split, max_images, start, data_root, download)
    source = open_checkpoint(checkpoint)
    announce(source)
    run, inputs = complete_images, {"images": images}
    if split is not None:
        run, inputs = complete_split, {"split": split, "start": start or 0}
        inputs |= {"count": max_images or 8, "data_root": data_root, "download": download}
    with row_progress("completing") as progress:
        results = run(
            source,
            **inputs,
            occlude=occlude,
            samples=samples,
            out_dir=out,
            seed=seed,
            temperature=temperature,
            method=method,
            device=device,
            progress=progress,
            note=lambda line: console.print(f"note: {line}", soft_wrap=True),
            zoom=zoom,
            classes=classes,
        )
    _show(results, out)


def _show(results, out: Path) -> None:
    """One line per image: its grid and how many completions, under which class."""
    for r in results:
        own = ", its own" if r.own_label else ""
        under = "" if r.label is None else f" (class {r.label}{own})"
        done = f"{r.image}{under}: {r.files[0]} and {len(r.files) - 1} completions in {out}/"
        console.print(done, soft_wrap=True)


def _check_inputs(images, split, max_images, start, data_root, download) -> None:
    """Image files or --split, not both; the --split options only with it."""
    if split is not None and images:
        raise ConfigError(
            f"--split: give image files or --split, not both (got {len(images)} image files)"
        )
    only = {"--max-images": max_images, "--start": start, "--data-root": data_root}
    given = [name for name, value in only.items() if value is not None] + ["--download"] * download
    if split is None and given:
        raise ConfigError(f"{given[0]}: only with --split (images of the checkpoint's data set)")


def _names_a_checkpoint(arg: Path) -> bool:
    """A run directory, a checkpoint or export file, or a shipped model's name (and not an
    existing image)."""
    if arg.is_dir() or arg.suffix in (".pt", ".safetensors"):
        return True
    return not arg.exists() and str(arg) in pretrained.names()

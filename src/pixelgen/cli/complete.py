"""``pixelgen complete``: fill in a hidden part of images with a checkpoint's model."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import pretrained
from ..images import OCCLUSION_MODES
from ..sampling.api import complete_images, open_checkpoint
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
    "pixelgen complete runs/RUN --occlude bottom-half a.png."
)


@app.command("complete", help=_HELP)
def complete_command(
    images: list[Path] = typer.Argument(
        ..., help="Images to complete, after an optional checkpoint (see above)."
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
        "needed, since image files carry no class.",
    ),
) -> None:
    if checkpoint is None and images and _names_a_checkpoint(images[0]):
        checkpoint, images = images[0], images[1:]
    source = open_checkpoint(checkpoint)
    announce(source)
    with row_progress("completing") as progress:
        results = complete_images(
            source,
            images,
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
    for r in results:
        done = f"{r.image}: {r.files[0]} and {len(r.files) - 1} completions in {out}/"
        console.print(done, soft_wrap=True)


def _names_a_checkpoint(arg: Path) -> bool:
    """A run directory, a checkpoint or export file, or a shipped model's name (and not an
    existing image)."""
    if arg.is_dir() or arg.suffix in (".pt", ".safetensors"):
        return True
    return not arg.exists() and str(arg) in pretrained.names()

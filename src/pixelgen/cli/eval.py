"""``pixelgen eval [CHECKPOINT]``: exact NLL of a split, in nats and bits/dim."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..report import evaluate_checkpoint
from . import options
from .app import app, console


@app.command("eval")
def eval_command(
    checkpoint: Path | None = typer.Argument(
        None,
        help="Checkpoint file, run directory, .safetensors export or shipped model name "
        "(default: the most recent run, else the best shipped model).",
    ),
    bits_per_dim: bool = typer.Option(
        False, "--bits-per-dim", help="Make bits per dimension the headline number."
    ),
    split: str | None = typer.Option(
        None, "--split", help="test, valid or train (default: the recipe's eval.split, test)."
    ),
    max_images: int | None = typer.Option(
        None,
        "--max-images",
        min=1,
        help="Evaluate only the first N images of the split (default: the recipe's "
        "eval.max_images, all).",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Images per forward pass (default: the recipe's eval.batch_size, 64).",
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Also write the result as JSON to this path ('-' for stdout)."
    ),
    report_dir: Path | None = typer.Option(
        None,
        "--report",
        help="Also write pictures to DIR: heatmap.png (mean NLL per pixel), histogram.png "
        "(NLL per image), most_likely.png and least_likely.png (8 each), and report.json.",
    ),
    data_root: str | None = typer.Option(
        None, "--data-root", help="Where the data set lives, if not where training found it."
    ),
    download: bool = typer.Option(
        False, "--download", help="Fetch the data set from where it is published if not found."
    ),
    device: str = options.DEVICE,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Evaluate a checkpoint: NLL in nats per image and bits/dim, with the standard error.
    The result is also appended to the run directory's eval.json."""
    report = evaluate_checkpoint(
        checkpoint,
        split=split,
        max_images=max_images,
        batch_size=batch_size,
        data_root=data_root,
        download=download,
        device=device,
        show_progress=progress,
        report_dir=report_dir,
        json_path=None if json_path is None or str(json_path) == "-" else json_path,
        log=console.print,
    )
    _show(report, bits_per_dim=bits_per_dim, json_path=json_path, report_dir=report_dir)


def _show(
    report: dict, *, bits_per_dim: bool, json_path: Path | None, report_dir: Path | None
) -> None:
    """Print the result: the headline number, then the condition, the parts and the files."""
    nats = f"{report['nll_nats']:.3f} ± {report['nll_nats_stderr']:.3f} nats/image"
    bpd = f"{report['bits_per_dim']:.4f} bits/dim"
    head, tail = (bpd, nats) if bits_per_dim else (nats, bpd)
    console.print(
        f"[bold]{head}[/]  ({tail}; {report['split']} split, {report['num_images']} images)"
    )
    if "condition" in report:
        c = report["condition"]
        console.print(
            f"  conditional: -log p(image | class), each image scored given its own class "
            f"({c['classes']} classes)"
        )
    for part, r in report.get("parts", {}).items():
        console.print(
            f"  {part} part: {r['nll_nats']:.3f} nats/image ({r['bits_per_dim']:.4f} bits/dim "
            f"over its {r['dims']} values)"
        )
    if json_path is not None:
        if str(json_path) == "-":
            typer.echo(json.dumps(report, indent=2))
        else:
            console.print(f"wrote {json_path}")
    if report_dir is not None:
        files = ", ".join(Path(p).name for p in report["report"].values())
        console.print(f"report in {report_dir}/: {files}", soft_wrap=True)

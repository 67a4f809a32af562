"""``pixelgen export [CHECKPOINT] --format F --out PATH``: portable weights or a deployable
program, each verified by loading it back (``pixelgen.export.export_checkpoint``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.markup import escape

from ..export import export_checkpoint
from ..sources import open_checkpoint
from .app import app, console


class ExportFormat(str, Enum):
    safetensors = "safetensors"
    torchscript = "torchscript"
    onnx = "onnx"


# Rich markup: "\[" is a literal bracket; blank lines separate paragraphs in --help.
HELP = """Export a checkpoint as portable weights or a deployable program, then verify it:
the file is loaded back and its logits are compared with the checkpoint's on test images
(random images if the data set is not found); a file that does not match is removed.

[bold]safetensors[/]: fp32 weights (causal masks folded in: each masked kernel is stored as
weight * mask) and metadata (model name, hyperparameters and data as JSON, versions, a
checksum). Load with pixelgen.load_model("m.safetensors"), or without pixelgen with
safetensors.torch.load_file("m.safetensors").

[bold]torchscript[/]: a traced program, integer images (B, C, H, W) -> logits
(B, levels, C, H, W), for the H and W of the checkpoint (the recurrences are unrolled);
any batch size. Load with torch.jit.load("m.ts"), no pixelgen needed; the description is
the extra file pixelgen.json.

[bold]onnx[/]: the same program as an ONNX graph (input "images", int64; output "logits";
dynamic batch axis; metadata in metadata_props). Run with
onnxruntime.InferenceSession("m.onnx"). Needs pip install 'pixelgen\\[onnx]'."""


@app.command("export", help=HELP)
def export_command(
    checkpoint: Path | None = typer.Argument(
        None,
        help="Checkpoint file, run directory, .safetensors export or shipped model name "
        "(default: the most recent run).",
    ),
    fmt: ExportFormat = typer.Option(
        ..., "--format", "-f", help="safetensors, torchscript or onnx (see above)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="File to write (e.g. model.safetensors, model.ts, model.onnx)."
    ),
    batch: int = typer.Option(8, "--batch", min=1, help="Test images used to verify the file."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Load the file back and compare logits (default on)."
    ),
) -> None:
    # No shipped default here: an export is a deliberate choice of model.
    ckpt, note = open_checkpoint(checkpoint, shipped_default=False)
    if note:
        _say(escape(note))
    with console.status(f"exporting to {fmt.value}..."):
        report = export_checkpoint(ckpt, fmt.value, out, batch=batch, verify=verify)
    size = _human(report.path.stat().st_size)
    _say(
        f"wrote {escape(str(report.path))} ({report.format}, {size}) "
        f"from {escape(str(report.checkpoint))}"
    )
    if report.format != "safetensors":
        c, h, w = report.channels, report.height, report.width
        condition = ckpt.condition()
        classes = (
            "" if condition is None else f" and their classes (B,) in [0, {condition.classes})"
        )
        _say(
            f"input: integer images (B, {c}, {h}, {w}){classes}, any batch size B; "
            f"output: logits (B, {report.levels}, {c}, {h}, {w})"
        )
    if report.max_abs_diff is None:
        _say("not verified (--no-verify)")
    else:
        _say(
            f"verified on {report.num_images} images, {escape(report.images_source)}: "
            f"max |logit difference| = {report.max_abs_diff:.2e} (bound {report.bound:.0e})"
        )


def _say(text: str) -> None:
    # One line per fact, unwrapped, so that paths and numbers survive copy and grep.
    console.print(text, soft_wrap=True)


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"

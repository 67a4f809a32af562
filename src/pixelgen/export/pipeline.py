"""``export_checkpoint``: checkpoint -> export file, proven by a round trip in the same call.

Every export is loaded back from disk and must reproduce the checkpoint model's logits on
a batch of test images (and on a single image, so that a program with the batch size baked
in cannot pass) to within a bound: 1e-4 for the weights and the TorchScript program, which
run the same float32 kernels, 1e-3 for ONNX, which onnxruntime computes with its own
kernels. A file that fails is removed, never left behind looking valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import Checkpoint
from ..errors import ExportError, PixelgenError
from ..sources import open_checkpoint
from ..text import first_line
from .onnx_io import require_onnx, write_onnx
from .program import check_format, load_exported
from .safetensors_io import write_safetensors
from .torchscript_io import write_torchscript
from .verify import dataset_images, example_classes, max_abs_diff, random_images

BOUNDS = {"safetensors": 1e-4, "torchscript": 1e-4, "onnx": 1e-3}
WRITERS = {"safetensors": write_safetensors, "torchscript": write_torchscript, "onnx": write_onnx}


@dataclass
class ExportReport:
    """What ``export_checkpoint`` wrote and how it was verified. ``max_abs_diff`` is None
    when verification was skipped; ``height``/``width`` are the image size the export was
    made (TorchScript, ONNX) or verified for; ``channels``/``levels`` the model's."""

    format: str
    path: Path
    max_abs_diff: float | None
    bound: float
    num_images: int
    images_source: str
    checkpoint: Path | None = None
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    levels: int | None = None


def export_checkpoint(
    ckpt_path: str | Path | Checkpoint,
    fmt: str,
    out: str | Path,
    *,
    batch: int = 8,
    verify: bool = True,
) -> ExportReport:
    """Export the checkpoint (a ``.pt`` file, a run directory, a safetensors export or a
    shipped model's name, see ``pixelgen.sources``; or an already opened ``Checkpoint``) as
    ``fmt`` (``safetensors``, ``torchscript`` or ``onnx``) to ``out``, atomically, then
    verify it on ``batch`` images."""
    fmt = check_format(fmt)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ExportError(f"batch must be a positive integer, got {batch!r}")
    if fmt == "onnx":
        require_onnx()  # before any work: a missing extra is the likeliest failure
    if isinstance(ckpt_path, Checkpoint):
        ckpt = ckpt_path
    else:
        ckpt = open_checkpoint(ckpt_path, shipped_default=False)[0]
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; --out needs a file name")
    if ckpt.path is not None and out.resolve() == Path(ckpt.path).resolve():
        raise ExportError(f"{out}: is the checkpoint itself; choose another --out")
    model = ckpt.build_model("cpu")
    images, source, (height, width) = _verification_images(ckpt, model, fmt, batch, verify)
    try:
        WRITERS[fmt](model, ckpt, out, height=height, width=width)
    except PixelgenError:
        raise
    except Exception as exc:  # tracing or the ONNX exporter refusing an operation
        raise ExportError(
            f"exporting {ckpt.model_name} as {fmt} failed: {type(exc).__name__}: {first_line(exc)}"
        ) from exc
    report = ExportReport(
        format=fmt,
        path=out,
        max_abs_diff=None,
        bound=BOUNDS[fmt],
        num_images=0,
        images_source=source,
        checkpoint=ckpt.path,
        height=height,
        width=width,
        channels=model.channels,
        levels=model.levels,
    )
    if verify:
        _verify(report, model, images)
    return report


def _verification_images(ckpt: Checkpoint, model, fmt: str, batch: int, verify: bool):
    """``(images or None, where they came from, (height, width))``: the data set's test
    images where they can be read, else random ones; the size is the checkpoint's, else
    theirs (``(None, None)`` where neither is known and a safetensors file needs none)."""
    size = ckpt.image_size()
    images, source, why_not = None, "not verified", "not needed"
    if verify or size is None:
        images, found = dataset_images(ckpt, model, batch)
        if images is None:
            why_not = found
        else:
            source = found
            size = size or (int(images.shape[-2]), int(images.shape[-1]))
    if size is None and (verify or fmt != "safetensors"):
        raise ExportError(
            f"{ckpt.path}: unknown image size: the checkpoint records no data.height/width "
            f"and its test images cannot be read ({why_not})"
        )
    if verify and images is None:
        images = random_images(model, batch, *size)
        source = f"random images (data set not found: {why_not})"
    return images, source, size if size is not None else (None, None)


def _verify(report: ExportReport, model, images: torch.Tensor) -> None:
    """Load the written file back and compare its logits with the model's on ``images``;
    a file that fails is removed, and the report gets the difference."""
    out, fmt = report.path, report.format
    try:
        classes = example_classes(model, len(images))
        diff = max_abs_diff(model, load_exported(out, fmt), images, classes)
    except Exception as exc:
        out.unlink(missing_ok=True)
        raise ExportError(
            f"{out}: the {fmt} export does not load and run ({first_line(exc)}); removed it"
        ) from exc
    if not diff <= report.bound:  # also catches NaN
        out.unlink(missing_ok=True)
        raise ExportError(
            f"{out}: the {fmt} export does not reproduce the checkpoint: max |logit difference| "
            f"{diff:.3g} > {report.bound:g} on {len(images)} images ({report.images_source}); "
            "removed it"
        )
    report.max_abs_diff, report.num_images = diff, len(images)

"""Load any export back as one kind of object: a callable from an integer batch
``(B, C, H, W)`` to logits ``(B, levels, C, H, W)`` (torch tensors in and out) plus the
description the file carries. A class-conditional model's export takes the classes
``(B,)`` (int64) as a second input. ``export_checkpoint`` verifies every export through
this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ExportError
from .metadata import FORMATS

_SUFFIXES = {
    ".safetensors": "safetensors",
    ".onnx": "onnx",
    ".pt": "torchscript",
    ".pth": "torchscript",
    ".ts": "torchscript",
    ".jit": "torchscript",
    ".torchscript": "torchscript",
}


@dataclass
class ExportedProgram:
    """A loaded export. ``info``: model_name, hparams, data, step, versions and, for the
    fixed-size programs, height and width."""

    format: str
    path: Path
    info: dict[str, Any]
    run: Callable[..., torch.Tensor]

    def __call__(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` (and a conditional model's classes ``(B,)``) -> logits."""
        with torch.no_grad():
            return self.run(x) if classes is None else self.run(x, classes)


def format_of(path: str | Path) -> str:
    """The export format a file name suggests (``model.onnx`` -> ``"onnx"``)."""
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ExportError(
            f"{path}: cannot tell the export format from the suffix; use .safetensors, "
            ".onnx or .ts/.pt (TorchScript), or name the format"
        )
    return fmt


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return fmt


def load_exported(path: str | Path, fmt: str | None = None) -> ExportedProgram:
    """Load an export of any format (inferred from the suffix unless ``fmt`` is given).
    A missing, truncated, corrupted or foreign file raises a one-line ``PixelgenError``
    (``CheckpointError`` for safetensors, ``ExportError`` for the programs)."""
    path = Path(path)
    fmt = check_format(fmt) if fmt is not None else format_of(path)
    if fmt == "safetensors":
        from .safetensors_io import read_safetensors

        run, info = read_safetensors(path)
    elif fmt == "torchscript":
        from .torchscript_io import read_torchscript

        run, info = read_torchscript(path)
    else:
        from .onnx_io import read_onnx

        run, info = read_onnx(path)
    return ExportedProgram(format=fmt, path=path, info=info, run=run)

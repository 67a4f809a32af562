"""Deployable program, TorchScript: ``torch.jit.load(PATH)`` maps an integer batch
``(B, C, H, W)`` to logits ``(B, levels, C, H, W)`` with no pixelgen installed.

The model is *traced*: the recurrences of the Row LSTM (§3.1, one step per row) and the
Diagonal BiLSTM (§3.2, one step per skewed column) are Python loops, which the trace
unrolls for one image size. H and W are therefore fixed; the batch size is not (sizes are
read from the input at run time, and the export is verified on a batch of another size).
A small scripted shell around the trace refuses an input of any other shape with a clear
message (an unrolled recurrence would otherwise give wrong logits or an obscure error)
and carries ``model_name``, ``channels``, ``height``, ``width`` and ``levels`` as
attributes; the full description (hyperparameters, data, versions) is the JSON extra file
``pixelgen.json``. A class-conditional model's program takes the classes as a second input,
``program(images, classes)`` with ``classes`` int64 ``(B,)``.
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..checkpoint import Checkpoint
from ..errors import ExportError
from ..io import atomic_write
from ..text import first_line
from .metadata import describe, read_description
from .verify import example_classes

EXTRA_FILE = "pixelgen.json"


class FixedSizeProgram(nn.Module):
    """Checks the input shape, then runs the traced model."""

    def __init__(
        self,
        traced: nn.Module,
        *,
        model_name: str,
        channels: int,
        height: int,
        width: int,
        levels: int,
    ) -> None:
        super().__init__()
        self.net = traced
        self.model_name = model_name
        self.channels, self.height, self.width, self.levels = channels, height, width, levels
        self.expected = f"(B, {channels}, {height}, {width})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, L, C, H, W)
        if (
            x.dim() != 4
            or x.size(1) != self.channels
            or x.size(2) != self.height
            or (x.size(3) != self.width)
        ):
            raise ValueError(
                "this pixelgen program takes integer images "
                + self.expected
                + " (the size it was exported for), got "
                + str(x.shape)
            )
        return self.net(x)


class ConditionalProgram(FixedSizeProgram):
    """``FixedSizeProgram`` of a class-conditional model: ``(images, classes (B,))``. The
    trace reads labels as they are (``nn/condition._one_hot``), so the range is checked
    here: a class out of it would otherwise give the logits of no class at all."""

    def __init__(self, traced: nn.Module, *, classes: int, **kw) -> None:
        super().__init__(traced, **kw)
        self.classes = classes
        self.expected_classes = f"their classes (B,) in [0, {classes})"

    def forward(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        if (
            x.dim() != 4
            or x.size(1) != self.channels
            or x.size(2) != self.height
            or (x.size(3) != self.width)
            or classes.dim() != 1
            or classes.size(0) != x.size(0)
        ):
            raise ValueError(
                "this pixelgen program takes integer images "
                + self.expected
                + " and "
                + self.expected_classes
                + ", got "
                + str(x.shape)
                + " and "
                + str(classes.shape)
            )
        if classes.numel() > 0 and (int(classes.min()) < 0 or int(classes.max()) >= self.classes):
            raise ValueError(
                "this pixelgen program takes " + self.expected_classes + ", got " + str(classes)
            )
        return self.net(x, classes)


def build_program(model: nn.Module, *, height: int, width: int) -> torch.jit.ScriptModule:
    """Trace ``model`` for ``height`` x ``width`` images and wrap it in the shape check."""
    generator = torch.Generator().manual_seed(0)
    # Any valid images will do: the models have no data-dependent control flow.
    example = torch.randint(
        0, model.levels, (3, model.channels, height, width), generator=generator
    )  # (B, C, H, W) int64
    classes = example_classes(model, len(example))  # (B,) or None
    inputs = (example,) if classes is None else (example, classes)
    shell = (
        FixedSizeProgram
        if classes is None
        else functools.partial(ConditionalProgram, classes=int(model.cond_channels))
    )
    # A copy without gradients: the program is for inference, its outputs need no graph.
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    with _quiet_jit(), torch.no_grad():
        traced = torch.jit.trace(frozen, inputs, check_trace=False)
        return torch.jit.script(
            shell(
                traced,
                model_name=model.model_name,
                channels=model.channels,
                height=height,
                width=width,
                levels=model.levels,
            )
        )


def write_torchscript(
    model: nn.Module, ckpt: Checkpoint, out: Path, *, height: int | None, width: int | None
) -> None:
    """Atomically write the traced program for ``height`` x ``width`` images to ``out``."""
    if height is None or width is None:
        raise ExportError(f"{ckpt.path}: a TorchScript program needs the image size; none known")
    program = build_program(model, height=height, width=width)
    meta = describe(ckpt, "torchscript", height=height, width=width)
    c, levels = model.channels, model.levels
    meta["input"] = f"integer tensor (B, {c}, {height}, {width}), values in [0, {levels})"
    if getattr(model, "cond_channels", 0):
        meta["input"] += f"; classes: integer tensor (B,), values in [0, {model.cond_channels})"
    meta["output"] = f"float32 logits (B, {levels}, {c}, {height}, {width})"
    extra = {EXTRA_FILE: json.dumps(meta, indent=1)}
    with _quiet_jit():
        atomic_write(out, lambda f: torch.jit.save(program, f, _extra_files=extra))


def read_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """``(program, info)``; an unreadable, corrupted or foreign file raises ``ExportError``."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    _check_archive(path)
    extra = {EXTRA_FILE: ""}
    try:
        with _quiet_jit():
            program = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError for anything it cannot parse
        raise ExportError(
            f"{path}: not a loadable TorchScript program ({first_line(exc)})"
        ) from None
    try:
        meta = json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else None
    except ValueError:
        meta = None
    info = read_description(meta, path, "torchscript", ExportError)
    return program.eval(), info


@contextmanager
def _quiet_jit() -> Iterator[None]:
    # Recent torch marks torch.jit deprecated, yet it is what deployments load with
    # (torch.jit.load, LibTorch), and the warning would say nothing to a pixelgen user.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        yield


def _check_archive(path: Path) -> None:
    # A TorchScript file is a zip archive whose records carry CRC-32s; torch.jit.load does
    # not check them, so a flipped bit in a weight would otherwise load silently.
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ExportError(
            f"{path}: not a readable TorchScript archive ({first_line(exc)}); it may be "
            "truncated: export it again"
        ) from None
    if bad is not None:
        raise ExportError(
            f"{path}: record {bad!r} fails its CRC check: the file is corrupted; export it again"
        )

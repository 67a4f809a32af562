"""Deployable program, ONNX: the same function as the TorchScript program, as an ONNX graph
with input ``images`` (int64, ``(batch, C, H, W)``) and output ``logits`` (float32,
``(batch, levels, C, H, W)``); the batch axis is dynamic, H and W are fixed because the
exporter unrolls the recurrences of §3.1 and §3.2 for one image size.

Needs the optional extra ``pixelgen[onnx]`` (onnx + onnxruntime). The graph is written by
the TorchScript-based exporter (``dynamo=False``): the torch.export-based one needs the
extra package onnxscript and gains nothing for these fixed-size graphs. The pixelgen
description and a digest of the initializers (the weights) are stored in
``metadata_props``, so a corrupted file is refused rather than run. A class-conditional
model's graph has a second input ``classes`` (int64, ``(batch,)``).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..checkpoint import Checkpoint
from ..errors import ExportError
from ..io import atomic_write
from ..text import first_line
from .metadata import check_digest, describe, read_description, tensors_sha256
from .verify import example_classes

# The newest opset the TorchScript-based exporter writes (onnxruntime >= 1.17 runs it).
OPSET = 20
INPUT, OUTPUT, CLASSES = "images", "logits", "classes"


def require_onnx() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or a one-line ``ExportError`` saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        missing = exc.name or "onnx"
        raise ExportError(
            f"the onnx format needs the packages onnx and onnxruntime ({missing} is not "
            "installed): pip install 'pixelgen[onnx]'"
        ) from None
    return onnx, onnxruntime


def write_onnx(
    model: nn.Module, ckpt: Checkpoint, out: Path, *, height: int | None, width: int | None
) -> None:
    """Export ``model`` for ``height`` x ``width`` images, check the graph, write ``out``."""
    onnx, _ = require_onnx()
    if height is None or width is None:
        raise ExportError(f"{ckpt.path}: an ONNX graph needs the image size; none known")
    generator = torch.Generator().manual_seed(0)
    example = torch.randint(
        0, model.levels, (3, model.channels, height, width), generator=generator
    )  # (B, C, H, W) int64
    classes = example_classes(model, len(example))  # (B,) int64, or None
    inputs, names = (
        ((example,), [INPUT]) if classes is None else ((example, classes), [INPUT, CLASSES])
    )
    axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}, CLASSES: {0: "batch"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter announces its deprecation, and that it cannot constant-fold
        # the strided slices of the skew (§3.2); neither affects the graph's results.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            inputs,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes={k: v for k, v in axes.items() if k in (*names, OUTPUT)},
        )
    proto = onnx.load_from_string(buffer.getvalue())
    meta = describe(ckpt, "onnx", height=height, width=width)
    meta["weights_sha256"] = _digest(onnx, proto)
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = (
        f"pixelgen {ckpt.model_name}: int64 images (batch, {model.channels}, {height}, {width}) "
        f"in [0, {model.levels}) -> logits (batch, {model.levels}, {model.channels}, {height}, "
        f"{width})"
        + ("" if classes is None else f"; classes: int64 (batch,) in [0, {model.cond_channels})")
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"{out}: the exported ONNX graph fails onnx.checker: {exc}") from None
    payload = proto.SerializeToString()
    atomic_write(out, lambda f: f.write(payload))


class OnnxProgram:
    """An onnxruntime session that takes and returns torch tensors, like the other formats."""

    def __init__(self, session: Any, *, classes: int = 0) -> None:
        self.session, self.classes = session, classes

    def __call__(self, x: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` (and a class-conditional model's classes ``(B,)``) -> logits.
        The graph reads labels as they are, so their range is checked here."""
        feed = {INPUT: x.detach().to("cpu", torch.int64).numpy()}
        if classes is not None:
            labels = torch.as_tensor(classes).to("cpu", torch.int64)
            if (
                self.classes
                and labels.numel()
                and not 0 <= labels.min() <= labels.max() < self.classes
            ):
                raise ExportError(
                    f"this pixelgen program takes classes (B,) in [0, {self.classes}), "
                    f"got {labels.tolist()}"
                )
            feed[CLASSES] = labels.numpy()
        (logits,) = self.session.run([OUTPUT], feed)
        return torch.from_numpy(logits)


def read_onnx(path: str | Path) -> tuple[OnnxProgram, dict[str, Any]]:
    """``(program, info)``; an unreadable, corrupted or foreign file raises ``ExportError``."""
    onnx, ort = require_onnx()
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:  # protobuf DecodeError, onnx ValidationError, ...
        raise ExportError(
            f"{path}: not a valid ONNX model ({first_line(exc)}); it may be truncated or "
            "corrupted: export it again"
        ) from None
    meta = {p.key: p.value for p in proto.metadata_props}
    info = read_description(meta, path, "onnx", ExportError)
    check_digest(info["weights_sha256"], _digest(onnx, proto), path, ExportError)
    options = ort.SessionOptions()
    # Idle onnxruntime threads otherwise spin on the cores, slowing whatever runs next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(
            proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ExportError(f"{path}: onnxruntime cannot load it ({first_line(exc)})") from None
    classes = int((info.get("hparams") or {}).get("cond_channels", 0) or 0)
    return OnnxProgram(session, classes=classes), info


def _digest(onnx: Any, proto: Any) -> str:
    arrays = onnx.numpy_helper.to_array
    return tensors_sha256((t.name, arrays(t)) for t in proto.graph.initializer)

"""``pixelgen export``: a checkpoint as portable weights or as a deployable program.

* ``safetensors``: the weights (fp32, masks folded in) and the model description; rebuilt
  with ``pixelgen.load_model(PATH)``, readable with ``safetensors.torch.load_file`` alone.
* ``torchscript``: a traced program, ``torch.jit.load(PATH)`` without pixelgen.
* ``onnx``: the same program as an ONNX graph (extra ``pixelgen[onnx]``).

The programs map an integer batch ``(B, C, H, W)`` to logits ``(B, levels, C, H, W)`` for
the H and W they were exported for (the recurrences are unrolled); the batch size is free.
Every export is verified by loading it back (``export_checkpoint``). One module per format.
"""

from __future__ import annotations

from .metadata import FORMAT_VERSION, FORMATS
from .pipeline import BOUNDS, ExportReport, export_checkpoint
from .program import ExportedProgram, format_of, load_exported
from .safetensors_io import load_safetensors_model, portable_weights

__all__ = [
    "BOUNDS",
    "FORMATS",
    "FORMAT_VERSION",
    "ExportReport",
    "ExportedProgram",
    "export_checkpoint",
    "format_of",
    "load_exported",
    "load_safetensors_model",
    "portable_weights",
]

"""What every export records about its model, and the weights checksum.

All three formats carry the same facts as string key/value pairs (the safetensors header's
``__metadata__``, the ONNX ``metadata_props``, and the ``pixelgen.json`` extra file of a
TorchScript program): the model name and hyperparameters (JSON) that rebuild it with
``pixelgen.create_model``, the data description and the resolved recipe (JSON), the
pixelgen and format versions, the training step, and, for the fixed-size programs, the
image height and width. A shipped model also carries its ``results`` (JSON).

Neither safetensors nor ONNX protects tensor bytes, so a flipped bit in a weight would load
silently; ``weights_sha256`` (a digest of every tensor's name, dtype, shape and bytes) lets
the loaders refuse such a file instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import Checkpoint

FORMAT_VERSION = 1
FORMATS = ("safetensors", "torchscript", "onnx")

# Machine-local file paths have no business in a file meant to be shipped elsewhere.
_PRIVATE_DATA_KEYS = ("sources",)
# JSON entries that older exports (recipe) or most files (results) lack.
_OPTIONAL_JSON = ("recipe", "results")


def describe(
    ckpt: Checkpoint, fmt: str, *, height: int | None = None, width: int | None = None
) -> dict[str, str]:
    """The metadata of an export of ``ckpt`` in format ``fmt`` (all values are strings)."""
    from .. import __version__

    data = {k: v for k, v in ckpt.data.items() if k not in _PRIVATE_DATA_KEYS}
    meta = {
        "format": f"pixelgen-{fmt}",
        "format_version": str(FORMAT_VERSION),
        "pixelgen_version": __version__,
        "model_name": ckpt.model_name,
        "hparams": json.dumps(dict(ckpt.hparams), sort_keys=True),
        "data": json.dumps(data, sort_keys=True, default=str),
        "recipe": json.dumps(_portable_recipe(ckpt.recipe), sort_keys=True, default=str),
        "step": str(int(ckpt.step)),
    }
    if height is not None and width is not None:
        meta["height"], meta["width"] = str(int(height)), str(int(width))
    return meta


def _portable_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe without the training machine's data folder (``data.root``)."""
    out = dict(recipe or {})
    if isinstance(out.get("data"), dict) and out["data"].get("root") is not None:
        out["data"] = {**out["data"], "root": None}
    return out


def read_description(
    meta: Mapping[str, str] | None, path: Path, fmt: str, error: type[Exception]
) -> dict[str, Any]:
    """Check and decode :func:`describe`'s output; problems raise ``error`` (one line)."""
    if not meta or meta.get("format") != f"pixelgen-{fmt}":
        raise error(
            f"{path}: not a pixelgen {fmt} export (its metadata lacks format=pixelgen-{fmt}); "
            f"export the checkpoint with: pixelgen export CHECKPOINT --format {fmt}"
        )
    try:
        version = int(meta.get("format_version", "0"))
        info: dict[str, Any] = {
            "format": fmt,
            "format_version": version,
            "pixelgen_version": meta.get("pixelgen_version", "?"),
            "model_name": meta["model_name"],
            "hparams": json.loads(meta["hparams"]),
            "data": json.loads(meta.get("data", "{}")),
            "step": int(meta.get("step", "0")),
            "weights_sha256": meta.get("weights_sha256"),
        }
        if "height" in meta:
            info["height"], info["width"] = int(meta["height"]), int(meta["width"])
        for key in _OPTIONAL_JSON:
            if key in meta:
                info[key] = json.loads(meta[key])
    except (KeyError, ValueError) as exc:
        raise error(f"{path}: damaged pixelgen metadata ({type(exc).__name__}: {exc})") from None
    if version > FORMAT_VERSION:
        raise error(
            f"{path}: written by a newer pixelgen (export format {version}, this one reads "
            f"up to {FORMAT_VERSION}); upgrade pixelgen"
        )
    if not isinstance(info["hparams"], dict):
        raise error(f"{path}: damaged pixelgen metadata (hparams is not a JSON object)")
    return info


def tensors_sha256(named: Iterable[tuple[str, np.ndarray]]) -> str:
    """Digest of named arrays, independent of the order they are given in."""
    digest = hashlib.sha256()
    for name, array in sorted(named, key=lambda item: item[0]):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def check_digest(expected: str | None, actual: str, path: Path, error: type[Exception]) -> None:
    if expected is None:
        raise error(f"{path}: damaged pixelgen metadata (no weights_sha256); re-export it")
    if expected != actual:
        raise error(
            f"{path}: the weights do not match their recorded checksum: the file is corrupted; "
            "export it again from the checkpoint"
        )

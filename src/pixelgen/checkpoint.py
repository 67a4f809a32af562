"""Checkpoints: the only code that reads or writes them.

A checkpoint describes itself, so ``eval``, ``sample``, ``complete`` and ``export`` need
nothing else: model name and hyperparameters, the resolved recipe, the data description,
step and epoch, optimizer and scheduler state, RNG states, and the weights. It holds only
tensors and plain Python values and is read with ``torch.load(weights_only=True)``, so a
file carrying a pickled object is refused and its payload never runs. Writes are atomic
(temporary file, fsync, rename): a run killed at any instant leaves the previous file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import random
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import section_fields, section_from_dict
from .errors import CheckpointError
from .io import atomic_write
from .registry import create_model
from .text import first_line

FORMAT = "pixelgen-checkpoint"
VERSION = 1
#: Image sides of the data sets a checkpoint may name without recording its size.
_DATA_SIDES = {
    "mnist": 28, "binarized_mnist": 28, "fashion_mnist": 28,
    "cifar10": 32, "imagenet32": 32, "imagenet64": 64,
}  # fmt: skip


@dataclass
class Checkpoint:
    """What a checkpoint file holds; ``state`` is everything needed to resume training."""

    model_name: str
    hparams: dict[str, Any]
    weights: dict[str, torch.Tensor]
    recipe: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def section(self, name: str) -> Any:
        """The recipe's ``name`` section (``eval``, ``sample``), validated, defaults filled;
        keys this version does not know (a file from another version) are left out."""
        recipe = self.recipe if isinstance(self.recipe, dict) else {}
        raw = recipe.get(name)
        if isinstance(raw, dict):
            known = section_fields(name)
            raw = {k: v for k, v in raw.items() if k in known}
        return section_from_dict(name, raw, source=f"{self.path} (its recipe)")

    def image_size(self, default: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """``(H, W)`` of the training images: the data description's, else the recipe's
        ``data.image_size``, else its data set's usual size, else ``default``."""
        data = self.data if isinstance(self.data, dict) else {}
        if isinstance(data.get("height"), int) and isinstance(data.get("width"), int):
            return data["height"], data["width"]
        recipe_data = self.recipe.get("data") if isinstance(self.recipe, dict) else None
        if isinstance(recipe_data, dict):
            side = recipe_data.get("image_size")
            if isinstance(side, int):
                return side, side
            if isinstance(side, (list, tuple)) and len(side) == 2:
                return int(side[0]), int(side[1])
            if recipe_data.get("name") in _DATA_SIDES:
                return (_DATA_SIDES[recipe_data["name"]],) * 2
        return default

    def condition(self):
        """The condition the model was trained with (``conditioning.ConditionInfo``: its
        kind and class names), or None for an unconditional model."""
        from .conditioning import from_checkpoint

        recipe = self.recipe if isinstance(self.recipe, dict) else {}
        data = self.data if isinstance(self.data, dict) else {}
        return from_checkpoint(self.hparams, recipe, data)

    def build_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        model = create_model(self.model_name, **self.hparams)
        try:
            model.load_state_dict(self.weights)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{self.path}: weights do not fit the model: {first}") from None
        return model.to(device).eval()


def save_checkpoint(path: str | Path, ckpt: Checkpoint, *, keep_previous: bool = False) -> None:
    """Atomically write ``ckpt`` to ``path`` (weights stored as fp32 on the CPU), with a
    checksum of every tensor. ``keep_previous`` first renames the file it replaces to
    ``<stem>.prev.pt``, so that one damaged file never loses a run."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": ckpt.model_name, "hparams": dict(ckpt.hparams)},
        "recipe": ckpt.recipe,
        "data": ckpt.data,
        "step": int(ckpt.step),
        "weights": {k: _cpu_fp32(v) for k, v in ckpt.weights.items()},
        "state": ckpt.state,
    }
    payload["checksums"] = _checksums(payload)
    keep = previous_path(Path(path)) if keep_previous else None
    buf = io.BytesIO()  # serialised first, so a failed write can say how much it needed
    torch.save(payload, buf)
    atomic_write(path, buf.getbuffer(), keep=keep)


def previous_path(path: Path) -> Path:
    """Where ``save_checkpoint(keep_previous=True)`` keeps the file it replaced."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint safely; any problem is a one-line ``CheckpointError``."""
    path = Path(path)
    if path.is_dir():
        path = resolve_run_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    payload = _read_payload(path)
    _verify(payload, path)
    try:
        return Checkpoint(
            model_name=payload["model"]["name"],
            hparams=dict(payload["model"]["hparams"]),
            weights=payload["weights"],
            recipe=payload.get("recipe", {}),
            data=payload.get("data", {}),
            step=int(payload.get("step", 0)),
            state=payload.get("state", {}),
            path=path,
        )
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint (missing {exc})") from None


def peek_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint's plain values (model, recipe, data description, step, the training
    state's settings such as ``best_valid_nll``), cheaply: the file is mapped rather than
    read, and only the checksum of the plain values is verified, not the tensors'. The
    ``weights`` come back empty: use :func:`load_checkpoint` to build a model. Any problem
    is a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    payload = _read_payload(path, mmap=True)
    recorded = payload.get("checksums")
    try:
        rest = {k: v for k, v in payload.items() if k != "checksums"}
        if isinstance(recorded, dict) and PLAIN in recorded:
            if hashlib.sha256(_plain_dump(rest).encode()).hexdigest() != recorded[PLAIN]:
                raise CheckpointError(
                    f"{path}: corrupted: {PLAIN} does not match its recorded checksum"
                )
        return Checkpoint(
            model_name=payload["model"]["name"],
            hparams=dict(payload["model"]["hparams"]),
            weights={},
            recipe=payload.get("recipe", {}),
            data=payload.get("data", {}),
            step=int(payload.get("step", 0)),
            state=payload.get("state", {}),
            path=path,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete checkpoint (missing {exc})") from None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model from a checkpoint (``.pt``) or a run directory. ``pixelgen.load_model``
    also takes exports and shipped models (``pixelgen.sources``)."""
    return load_checkpoint(path).build_model(device)


def resolve_run_checkpoint(run_dir: Path) -> Path:
    """``RUN/checkpoints/best.pt`` if present, else ``last.pt``."""
    for name in ("best.pt", "last.pt"):
        candidate = run_dir / "checkpoints" / name
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{run_dir}: no checkpoints/best.pt or checkpoints/last.pt in it")


def runs_root() -> Path:
    return Path(os.environ.get("PIXELGEN_RUNS", "runs"))


def latest_checkpoint() -> Path:
    """The newest run's checkpoint under ``runs/`` (or ``$PIXELGEN_RUNS``)."""
    root = runs_root()
    runs = [p for p in root.glob("*/checkpoints/last.pt")] if root.is_dir() else []
    if not runs:
        raise CheckpointError(
            f"no checkpoint given and no runs under {root}/: train one first "
            "(pixelgen train quick_rowlstm) or pass a checkpoint path"
        )
    newest = max(runs, key=lambda p: p.stat().st_mtime).parent.parent
    return resolve_run_checkpoint(newest)


def rng_state() -> dict[str, Any]:
    """Every RNG a training run draws from, as tensors and plain values."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": _to_plain(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(x):
    return [_to_plain(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list) else x


def _cpu_fp32(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    return t.float() if t.is_floating_point() else t


#: What a file that is not a checkpoint most likely is, by its first bytes.
_NOT_CHECKPOINTS = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
    b"%PDF": "a PDF document",
}


_EXPECTED = (
    "expected a .pt file written by pixelgen train, a run directory, or a shipped model's name"
)


def _read_payload(path: Path, *, mmap: bool = False) -> dict:
    """The file's contents, read with ``weights_only`` (tensors and plain values only);
    with ``mmap`` the tensors are mapped from the file, not read."""
    _check_kind(path)
    try:
        # torch warns about what it meets in a foreign file (a pickle protocol, a TorchScript
        # archive) before failing; the error below says it in one line instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if "Unsupported operand" in str(exc):  # no pickle it knows: a text file, an ONNX file
            raise CheckpointError(f"{path}: not a checkpoint ({_EXPECTED})") from None
        raise CheckpointError(
            f"{path}: refused: the file carries pickled Python objects, which pixelgen never "
            "loads (only tensors and plain values)"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, a TorchScript program ...
        if "TorchScript" in str(exc):
            raise CheckpointError(
                f"{path}: this is a TorchScript export, not a checkpoint; load it with "
                "torch.jit.load"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a pixelgen checkpoint")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: written by a newer pixelgen (version {payload['version']})")
    return payload


def _check_kind(path: Path) -> None:
    """Say what a file plainly not a checkpoint is, before torch guesses at it."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({first_line(exc)})") from None
    if not head:
        raise CheckpointError(f"{path}: an empty file, not a checkpoint")
    for magic, kind in _NOT_CHECKPOINTS.items():
        if head.startswith(magic):
            raise CheckpointError(f"{path}: {kind}, not a checkpoint ({_EXPECTED})")
    if head.startswith(b"PK\x03\x04") and _is_torchscript(path):
        raise CheckpointError(
            f"{path}: this is a TorchScript export, not a checkpoint; load it with torch.jit.load"
        )


def _is_torchscript(path: Path) -> bool:
    """A zip archive holding TorchScript's ``constants.pkl`` (a ``pixelgen export``
    program), where a checkpoint holds only ``data.pkl`` and its tensors."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.rsplit("/", 1)[-1] == "constants.pkl" for n in z.namelist())
    except Exception:  # damaged (zipfile raises several kinds): torch.load reports it
        return False


def _tensors(obj: Any, prefix: str = ""):
    """``(entry, tensor)`` of every tensor in nested dicts and lists, e.g.
    ``("weights/head.out.bias", t)``."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def _digest(t: torch.Tensor) -> str:
    data = t.detach().cpu().contiguous().reshape(-1)
    h = hashlib.sha256(f"{data.dtype}{tuple(t.shape)}".encode())
    h.update(data.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: The checksum entry of everything that is not a tensor (step, recipe, optimizer settings).
PLAIN = "plain values (step, recipe, hyperparameters, optimizer and scheduler settings)"


def _checksums(payload: dict) -> dict[str, str]:
    """A SHA-256 of each tensor of the weights and the training state, by entry, and one
    of all the plain values around them."""
    parts = {"weights": payload["weights"], "state": payload["state"]}
    sums = {entry: _digest(t) for entry, t in _tensors(parts)}
    rest = {k: v for k, v in payload.items() if k != "checksums"}
    sums[PLAIN] = hashlib.sha256(_plain_dump(rest).encode()).hexdigest()
    return sums


def _plain_dump(obj: Any) -> str:
    """A canonical text of ``obj`` with every tensor reduced to its shape and dtype."""

    def plain(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return f"<tensor {tuple(x.shape)} {x.dtype}>"
        if isinstance(x, dict):
            return {str(k): plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return json.dumps(plain(obj), sort_keys=True, default=repr)


def _mismatches(payload: dict, path: Path) -> list[str]:
    """The entries whose tensors do not match their recorded checksums (none for a
    checkpoint written before checksums were recorded)."""
    recorded = payload.get("checksums")
    if recorded is None:
        return []
    try:
        actual = _checksums(payload)
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: incomplete checkpoint (no weights or state)") from None
    return sorted(set(recorded) ^ set(actual)) or [e for e in actual if actual[e] != recorded[e]]


def _verify(payload: dict, path: Path) -> None:
    bad = _mismatches(payload, path)
    if bad:
        raise CheckpointError(
            f"{path}: corrupted: {bad[0]} does not match its recorded checksum"
            f"{'' if len(bad) == 1 else f' (and {len(bad) - 1} more entries)'}; "
            f"{_intact_sibling(path)}"
        )


def _intact_sibling(path: Path) -> str:
    """Which other checkpoint of the same run directory loads and verifies, if any."""
    for name in ("last.pt", "last.prev.pt", "best.pt"):
        other = path.with_name(name)
        if other == path or not other.is_file():
            continue
        try:
            if _mismatches(_read_payload(other), other):
                continue
        except CheckpointError:
            continue
        return f"{other} is intact"
    return "no other checkpoint of this run is intact"

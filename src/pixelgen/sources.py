"""What a command's CHECKPOINT names, and the one reader that ``eval``, ``sample``,
``complete``, ``export`` and ``pixelgen.load_model`` share.

A CHECKPOINT is, in this order of precedence:

1. a path that exists: a ``.pt`` training checkpoint, a run directory (its ``best.pt``,
   else ``last.pt``), or a pixelgen ``.safetensors`` export;
2. the name of a model shipped in the package (``pixelgen pretrained`` lists them).

With none given, the newest run under ``runs/`` (``$PIXELGEN_RUNS``) is used, and where
there is none, the best shipped model (``eval``, ``sample`` and ``complete``; ``export``
asks for an explicit choice). Every choice the user did not spell out comes back as a note
that the command prints.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import pretrained
from .checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, runs_root
from .errors import CheckpointError
from .text import did_you_mean


def open_checkpoint(
    spec: str | Path | None, *, shipped_default: bool = True
) -> tuple[Checkpoint, str | None]:
    """``(checkpoint, note)`` for a CHECKPOINT argument; ``note`` says what was chosen
    when the argument did not name it outright (None otherwise)."""
    if spec is None:
        return _default(shipped_default)
    path = Path(spec)
    shipped = pretrained.find(str(spec))
    if path.exists():
        note = None
        if shipped is not None:
            note = f"using {path} (it exists here), not the shipped model {shipped.name}"
        return read_checkpoint(path), note
    if shipped is not None:
        return read_shipped(shipped), f"using the shipped model {shipped.name}: {shipped.summary()}"
    raise CheckpointError(_not_found(str(spec)))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """A ``.pt`` file, a run directory or a ``.safetensors`` export as a :class:`Checkpoint`
    (an export has no training state, so it cannot be resumed)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return load_checkpoint(path)
    from .export.safetensors_io import read_safetensors

    model, info = read_safetensors(path)
    return Checkpoint(
        model_name=info["model_name"],
        hparams=info["hparams"],
        weights=model.state_dict(),
        recipe=info.get("recipe") or {},
        data=info["data"],
        step=info["step"],
        path=path,
    )


def read_shipped(model: pretrained.Pretrained) -> Checkpoint:
    return read_checkpoint(model.path)


def load_model(spec: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model a CHECKPOINT names (a file, a run directory or a shipped model's name)."""
    return open_checkpoint(spec, shipped_default=False)[0].build_model(device)


def _default(shipped_default: bool) -> tuple[Checkpoint, str | None]:
    try:
        path = latest_checkpoint()
    except CheckpointError as exc:
        best = pretrained.best() if shipped_default else None
        if best is None:
            names = ", ".join(pretrained.names())
            if not names:
                raise
            raise CheckpointError(f"{exc}, or a shipped model's name ({names})") from None
        note = (
            f"no checkpoint given and no runs under {runs_root()}/: using the shipped model "
            f"{best.name} ({best.summary()})"
        )
        return read_shipped(best), note
    return read_checkpoint(path), f"using the most recent run's checkpoint: {path}"


def _not_found(spec: str) -> str:
    names = pretrained.names()
    hint = did_you_mean(spec, names)
    shipped = f"; shipped models: {', '.join(names)}" if names else ""
    return f"{spec}: no such checkpoint file or run directory, nor a shipped model{hint}{shipped}"

"""Portable weights: a ``.safetensors`` file that rebuilds the model with pixelgen and reads
with the ``safetensors`` library alone.

The masks of §3.4 are not stored: every masked weight is stored *pre-multiplied*
(``weight * mask``), so a reader in any framework gets the causal kernels ready to use and
needs no notion of masks. The masks are a pure function of the hyperparameters; loading
rebuilds them with ``create_model``, and since they are 0/1, ``(weight * mask) * mask`` is
bit for bit ``weight * mask``: the rebuilt model computes exactly the checkpoint's logits.
A stored kernel that is non-zero where its rebuilt mask is zero means the weights do not
belong to these hyperparameters, and loading refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..checkpoint import Checkpoint
from ..errors import CheckpointError, PixelgenError
from ..io import atomic_write
from ..nn.masked import MaskedConv2d
from ..registry import create_model
from ..text import first_line
from .metadata import check_digest, describe, read_description, tensors_sha256


def portable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as stored in the file: fp32, masks folded into the kernels."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for prefix, module in _masked_convs(model):
        state[f"{prefix}weight"] = module.masked_weight().detach().cpu()
        del state[f"{prefix}mask"]
    return {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def write_safetensors(
    model: torch.nn.Module,
    ckpt: Checkpoint,
    out: Path,
    *,
    height: int | None,
    width: int | None,
    extra: dict[str, str] | None = None,
) -> None:
    """Atomically write ``model``'s portable weights and ``ckpt``'s description to ``out``
    (``extra``: more metadata, such as a shipped model's recipe and results)."""
    from safetensors.torch import save

    tensors = portable_weights(model)
    meta = {**describe(ckpt, "safetensors", height=height, width=width), **(extra or {})}
    meta["weights_sha256"] = _digest(tensors)
    meta["masks"] = "folded: each masked kernel is stored as weight * mask; no mask tensors"
    payload = save(tensors, metadata=meta)
    atomic_write(out, lambda f: f.write(payload))


def read_safetensors(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``(model, info)`` from a pixelgen safetensors file; problems raise ``CheckpointError``."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({first_line(exc)}); "
            "it may be truncated: export it again"
        ) from None
    info = read_description(meta, path, "safetensors", CheckpointError)
    check_digest(info["weights_sha256"], _digest(tensors), path, CheckpointError)
    try:
        model = create_model(info["model_name"], **info["hparams"])
    except PixelgenError as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model: {exc}") from None
    _load_portable(model, tensors, path)
    return model.to(device).eval(), info


def load_safetensors_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in a pixelgen ``.safetensors`` export (``pixelgen.sources``
    calls this for ``.safetensors`` paths). The model is in eval mode on ``device``."""
    return read_safetensors(path, device)[0]


def _load_portable(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    masked = dict(_masked_convs(model))
    expected = set(model.state_dict()) - {f"{p}mask" for p in masked}
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise CheckpointError(
            f"{path}: the weights do not fit model {model.model_name!r} with the recorded "
            f"hyperparameters ({what})"
        )
    for prefix, module in masked.items():
        kernel = tensors[f"{prefix}weight"]
        if kernel.shape == module.mask.shape and bool((kernel * (1 - module.mask)).any()):
            raise CheckpointError(
                f"{path}: {prefix}weight has non-zero entries where the causal mask is zero: "
                "the weights do not belong to the recorded hyperparameters"
            )
    try:
        # strict=False only because the masks are rebuilt, not read; the key sets match.
        model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise CheckpointError(
            f"{path}: the weights do not fit the model: {detail[-1] if detail else exc}"
        ) from None


def _masked_convs(model: torch.nn.Module) -> list[tuple[str, MaskedConv2d]]:
    """``(state-dict prefix, module)`` of every masked convolution, e.g. ``("head.out.", m)``."""
    return [
        (f"{name}." if name else "", m)
        for name, m in model.named_modules()
        if isinstance(m, MaskedConv2d)
    ]


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    return tensors_sha256((k, v.cpu().numpy()) for k, v in tensors.items())

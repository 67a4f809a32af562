"""The raster-then-channel loop shared by every sampling method.

Values are drawn in the model's order (rows, pixels, then colours R, G, B; §2). A value
that is known (completion) is kept exactly and never drawn; an unknown one is drawn from
the conditional given everything before it. Later known values are *not* conditioned on:
the model's conditionals only look backwards, so a completion of an image whose top half
is hidden ignores the visible bottom half except through what the sampled top implies.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import torch

from ..errors import ConditionError, ConfigError, ImageError
from .draw import draw_uniforms, inverse_cdf
from .naive import NaiveStepper
from .staged import staged_generator
from .stepper import fast_stepper

Progress = Callable[[int, int], None]
#: ``on_logits(i, j, c, logits)`` sees the ``(B, L)`` logits each step used (tests, debugging),
#: in step order; under the native rows a row's calls come after that row is drawn.
LogitsHook = Callable[[int, int, int, torch.Tensor], None]

METHODS = ("fast", "naive")


def generate(
    model: torch.nn.Module,
    x: torch.Tensor,
    known: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    method: str = "fast",
    progress: Progress | None = None,
    on_logits: LogitsHook | None = None,
    cond=None,
) -> torch.Tensor:
    """Fill the unknown values of ``x`` ``(B, C, H, W)``; ``known`` broadcasts to it.
    ``cond``: a conditional model's condition (class labels ``(B,)`` or one for all, or a
    map; see ``pixelgen.nn.condition``)."""
    if method not in METHODS:
        raise ConfigError(f"method: must be 'fast' or 'naive', got {method!r}")
    if not temperature > 0:
        raise ConfigError(f"temperature: must be > 0, got {temperature}")
    if x.dim() != 4 or x.shape[1] != model.channels:
        raise ImageError(
            f"images must be (N, {model.channels}, H, W) for this model, got {tuple(x.shape)}"
        )
    param = next(model.parameters())
    x = x.to(param.device, torch.long)
    known = torch.as_tensor(known, dtype=torch.bool, device=param.device)
    try:
        known = known.expand_as(x)
    except RuntimeError:
        raise ImageError(
            f"known mask of shape {tuple(known.shape)} does not fit images {tuple(x.shape)}"
        ) from None
    if bool(((x < 0) | (x >= model.levels))[known].any()):
        raise ImageError(f"known values must be integers in [0, {model.levels})")
    x = torch.where(known, x, torch.zeros_like(x))
    staged = staged_generator(model)
    if staged is not None:  # a composite model: each of its stages comes back here
        return staged(
            model, x, known, generate=generate, generator=generator, temperature=temperature,
            method=method, progress=progress, on_logits=on_logits, cond=cond,
        )  # fmt: skip
    cond_map = _cond_map(model, cond, x)
    u = draw_uniforms(tuple(x.shape), generator).to(param.device)  # (B, C, H, W)
    with torch.no_grad():
        stepper = _stepper_class(model, method)(model, x, cond_map)
        return _raster(stepper, x, known, u, temperature, progress, on_logits)


def _cond_map(model: torch.nn.Module, cond, x: torch.Tensor) -> torch.Tensor | None:
    """The prepared condition (on the model's device), checked once for every step."""
    if not hasattr(model, "cond_map"):  # a model outside the PixelModel family
        if cond is not None:
            raise ConditionError(f"{type(model).__name__} takes no condition")
        return None
    if isinstance(cond, torch.Tensor):
        cond = cond.to(x.device)
    elif cond is not None:
        cond = torch.as_tensor(cond, device=x.device)
    return model.cond_map(cond, x)


def _stepper_class(model: torch.nn.Module, method: str) -> type:
    """The naive stepper, or the model's fast one (the naive one, with a warning, if the
    model has none)."""
    cls = fast_stepper(model) if method == "fast" else NaiveStepper
    if cls is None:
        warnings.warn(
            f"no fast sampler for {type(model).__name__}: using the naive one "
            "(one forward pass per value)",
            stacklevel=3,
        )
        return NaiveStepper
    return cls


def _raster(stepper, x, known, u, temperature, progress, on_logits) -> torch.Tensor:
    _, colours, height, width = x.shape
    # Decided once on the CPU, so a GPU run never waits on a per-step sync.
    todo = (~known).any(0).cpu().tolist()  # [C][H][W]
    fused = stepper.fused_rows() if hasattr(stepper, "fused_rows") else None
    if fused is not None:  # the native rows read and write these in place, row-major
        x, known, u = x.contiguous(), known.contiguous(), u.contiguous()
    for i in range(height):
        stepper.start_row(x, i)
        # A stateful stepper's last call at a pixel fills its caches, even when the whole
        # pixel is known: calls[j][c] says whether (i, j, c) is stepped.
        calls = [
            [todo[c][i][j] or (stepper.stateful and c == colours - 1) for c in range(colours)]
            for j in range(width)
        ]
        if fused is None:
            _row(stepper, x, known, u, temperature, on_logits, i, calls, todo)
        else:
            logits = fused.row(x, u, known, i, temperature, calls, on_logits is not None)
            if on_logits is not None:  # logits: (W, C, B, L)
                for j, c in itertools.product(range(width), range(colours)):
                    if calls[j][c]:
                        on_logits(i, j, c, logits[j, c])
        if progress is not None:
            progress(i + 1, height)
    return x


def _row(stepper, x, known, u, temperature, on_logits, i, calls, todo) -> None:
    """Row ``i``, one step at a time through ``stepper.logits``."""
    for j, steps in enumerate(calls):
        for c, call in enumerate(steps):
            if not call:
                continue
            logits = stepper.logits(x, i, j, c)  # (B, L)
            if on_logits is not None:
                on_logits(i, j, c, logits)
            if todo[c][i][j]:
                v = inverse_cdf(logits, u[:, c, i, j], temperature)
                x[:, c, i, j] = torch.where(known[:, c, i, j], x[:, c, i, j], v)

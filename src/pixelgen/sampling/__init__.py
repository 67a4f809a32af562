"""Generation: exact sampling and completion for every model (§2: values are drawn one by
one in raster-then-channel order, each from its conditional).

Two exact methods share one driver (``driver.py``) and one source of randomness
(``draw.py``: all uniforms drawn up front, inverse CDF in float64), so they produce the
same images for the same seed:

* ``"naive"``: one full forward pass per value (``naive.py``), the reference;
* ``"fast"``: each position of each layer computed once from cached neighbours, one
  stepper per model (``pixelcnn.py``, ``row_lstm.py``, ``diagonal_bilstm.py``,
  ``gated_pixelcnn.py``). A model class without a registered stepper falls back to
  naive with a warning. Where the native extension is built, the PixelCNN, Row LSTM and
  Diagonal BiLSTM steppers run whole rows in C++ over the same caches
  (``native_body.py``), the Python steps being the fallback.

A composite model generates in stages, each a completion by one of its parts with either
method (``staged.py``; the Multi-Scale PixelRNN of §3.5: ``multiscale.py``).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from . import diagonal_bilstm, gated_pixelcnn, multiscale, pixelcnn, row_lstm  # noqa: F401  (register the steppers)
from .draw import draw_uniforms, inverse_cdf
from .driver import METHODS, LogitsHook, Progress, generate
from .stepper import Stepper, register_stepper

__all__ = [
    "METHODS",
    "Stepper",
    "complete",
    "draw_uniforms",
    "inverse_cdf",
    "register_stepper",
    "sample",
]


def sample(
    model: torch.nn.Module,
    n: int,
    size: tuple[int, int] = (28, 28),
    *,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    method: str = "fast",
    progress: Progress | None = None,
    on_logits: LogitsHook | None = None,
    cond=None,
) -> torch.Tensor:
    """``n`` images ``(n, C, H, W)`` (long, in ``[0, levels)``) drawn from ``model``.

    ``temperature`` divides the logits (``< 1`` sharper, ``> 1`` flatter); ``progress``
    is called as ``progress(rows_done, rows_total)``; ``on_logits(i, j, c, logits)``
    sees the ``(n, L)`` logits used for each value. ``cond``: a conditional model's
    condition, e.g. class labels ``(n,)`` or one label for all (``torch.tensor([7])``).
    """
    if n < 1:
        raise ConfigError(f"sample.n: must be >= 1, got {n}")
    height, width = size
    if height < 1 or width < 1:
        raise ConfigError(f"sample size: must be at least 1x1, got {height}x{width}")
    param = next(model.parameters())
    x = torch.zeros(n, model.channels, height, width, dtype=torch.long, device=param.device)
    known = torch.zeros(1, dtype=torch.bool, device=param.device)
    return generate(
        model,
        x,
        known,
        generator=generator,
        temperature=temperature,
        method=method,
        progress=progress,
        on_logits=on_logits,
        cond=cond,
    )


def complete(
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
    """Complete images ``x`` ``(N, C, H, W)``: values where ``known`` (bool, broadcast to
    ``x``) are kept exactly; the others are drawn in raster-then-channel order, each
    given every value before it, known or drawn.

    An autoregressive model cannot condition on known values that come *later* in the
    order (e.g. the visible bottom half when the top half is hidden): they are kept but
    do not inform the values drawn before them. ``cond``: a conditional model's
    condition, as for :func:`sample`.
    """
    return generate(
        model,
        x,
        known,
        generator=generator,
        temperature=temperature,
        method=method,
        progress=progress,
        on_logits=on_logits,
        cond=cond,
    )

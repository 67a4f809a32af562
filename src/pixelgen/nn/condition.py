"""Conditioning, one mechanism for every model (§3.5 of the paper; van den Oord et al.
2016, "Conditional Image Generation with PixelCNN Decoders", §2.3).

A condition is a map of ``c`` features: ``(B, c, H, W)``, an image-sized map (such as the
Multi-Scale PixelRNN's upsampled small image), or ``(B, c, 1, 1)``, one vector per image
broadcast over it (a class). Integer class labels ``(B,)`` are read as one-hot vectors of
``c`` classes. For every layer an **unmasked 1x1 convolution** maps the condition to that
layer's gate pre-activations, which the layer adds where its own input term goes:

* Row LSTM and Diagonal BiLSTM: the ``4h`` input-to-state map (each direction its own);
* PixelCNN: a block's ``k x k`` mask-B convolution, before its ReLU (``h`` maps);
* Gated PixelCNN: the ``2h`` pre-activations of the vertical and of the horizontal stack
  (``V_f h`` and ``V_g h`` inside the tanh and the sigmoid).

A 1x1 convolution of a one-hot class is a learned per-layer embedding of that class
(``V h`` above), so a class needs no separate embedding table: one-hot is the whole input.

The condition is no pixel, and every position may read all of it: it never meets a mask,
and the models stay causal in the pixels whatever it holds (``tests/test_condition.py``).
A model built with ``cond_channels=0`` has no ``Condition`` and no new parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConditionError


class Condition(nn.Module):
    """``widths[k]`` gate maps of layer term ``k`` from a ``c``-map condition: unmasked 1x1
    convolutions without bias (the layers have their own), ``(B, c, h, w) -> (B, widths[k],
    h, w)`` for ``h, w`` the image's size or 1."""

    def __init__(self, *, channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.channels = channels
        self.widths = tuple(int(w) for w in widths)
        self.maps = nn.ModuleList(nn.Conv2d(channels, w, 1, bias=False) for w in self.widths)

    def weight(self, k: int) -> torch.Tensor:
        """Term ``k``'s 1x1 weight as a matrix ``(widths[k], c)``."""
        return self.maps[k].weight[:, :, 0, 0]

    def terms(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """Every term of a prepared map ``(B, c, h, w)``, ``[(B, widths[k], h, w)]``: one
        product for all layers."""
        w = torch.cat([m.weight for m in self.maps])  # (sum widths, c, 1, 1)
        return list(F.conv2d(cond.to(w.dtype), w).split(self.widths, dim=1))


def as_map(
    cond: torch.Tensor,
    *,
    channels: int,
    batch: int,
    size: tuple[int, int],
    dtype: torch.dtype,
) -> torch.Tensor:
    """A condition as the ``(batch, c, h, w)`` float map the layers read, ``h, w`` either
    ``size`` or 1. Integer labels ``(B,)`` become one-hot ``(B, c, 1, 1)``; a batch of one
    is broadcast to ``batch``. Anything else is a one-line ``ConditionError``."""
    if not isinstance(cond, torch.Tensor):
        cond = torch.as_tensor(cond)
    if not cond.is_floating_point() and cond.dim() <= 1:
        cond = _one_hot(cond.reshape(-1), channels, dtype)  # (B, c, 1, 1)
    shape = tuple(cond.shape)
    # Checked before tracing (export verifies its inputs), not inside the traced program.
    fits = torch.jit.is_tracing() or (
        cond.dim() == 4
        and shape[0] in (1, batch)
        and shape[1] == channels
        and shape[2] in (1, size[0])
        and shape[3] in (1, size[1])
    )
    if not fits:
        raise ConditionError(
            f"condition of shape {shape} does not fit {batch} image(s) of {size[0]}x{size[1]}: "
            f"expected class labels ({batch},) or a map ({batch}, {channels}, H or 1, W or 1)"
        )
    cond = cond.to(dtype)
    # A map with the batch's size is used as it is, and so is any map in a traced program
    # (the layers' sums broadcast it): an expand would bake the traced batch into an
    # exported program (ONNX), which then refuses any other batch size.
    return cond if torch.jit.is_tracing() or shape[0] == batch else cond.expand(batch, -1, -1, -1)


def _one_hot(labels: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B,)`` integer labels -> ``(B, classes, 1, 1)``; written with ``==`` so that the
    exported programs (TorchScript, ONNX) take labels as they are."""
    if not torch.jit.is_tracing() and labels.numel():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= classes:
            bad = lo if lo < 0 else hi
            raise ConditionError(
                f"class {bad} is out of range: this model has classes 0..{classes - 1}"
            )
    hot = labels[:, None] == torch.arange(classes, device=labels.device)  # (B, classes)
    return hot.to(dtype)[:, :, None, None]

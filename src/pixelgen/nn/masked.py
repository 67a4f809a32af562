"""Masked convolution (§3.4): ``conv2d(x, weight * mask)`` with a causal mask buffer.

Speed, same outputs: a 1x1 convolution (the output head's layers, and the residual and
skip projections where a model runs its modules) runs as one batched matrix product with
the bias add fused (``baddbmm``), faster on CPU than the generic convolution, backward
included (``channels_first``: one product for maps stored channels first); a ``1 x k``
kernel (the Row LSTM's input-to-state) drops its columns right of the centre, which the
mask always zeroes.
``weight * mask`` is recomputed at every call, so an optimizer step can never leave a
stale masked weight behind. A kernel taller than one row is completed with its zero rows
below the centre at each call, so that the convolution pads inside the backend instead of
copying the input (and its gradient) through ``F.pad``. Under tracing (``pixelgen
export``) the plain ``conv2d`` is used."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .masks import conv_mask


class MaskedConv2d(nn.Module):
    """A ``k_h x k_w`` convolution that sees only earlier pixels and earlier colours.

    Only the kernel rows up to the centre are stored. The input is zero-padded (``k_h //
    2`` rows on top, ``k_w // 2`` columns on each side) so that the output has the
    input's height and width.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        *,
        mask_type: str,
        in_groups: torch.Tensor,
        out_groups: torch.Tensor,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        if len(in_groups) != in_channels or len(out_groups) != out_channels:
            raise ValueError("one colour group per input and per output feature map")
        self.kernel = (kh, kw)
        self.mask_type = mask_type
        self.register_buffer("mask", conv_mask(out_groups, in_groups, (kh, kw), mask_type))
        self.weight = nn.Parameter(torch.empty_like(self.mask))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Fan-in counts only the entries the mask lets through (per output, the most).
        # Biases start at zero so that the ReLUs that follow start half open.
        fan_in = max(1.0, float(self.mask.sum(dim=(1, 2, 3)).max()))
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """``F.pad`` order: left, right, top, bottom."""
        kh, kw = self.kernel
        return (kw // 2, kw // 2, kh // 2, 0)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def full_weight(self) -> torch.Tensor:
        """``(O, I, kh, kw)``: the stored rows, then the zero rows below the centre that
        the mask would drop (``conv2d`` with padding ``(kh // 2, kw // 2)`` takes it)."""
        return F.pad(self.masked_weight(), (0, 0, 0, self.kernel[0] // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, I, H, W) -> (B, O, H, W)
        kh, kw = self.kernel
        w = self.masked_weight()
        if torch.jit.is_tracing():
            return F.conv2d(F.pad(x, self.padding), w, self.bias)
        if kh == 1 and kw == 1:
            return pointwise(x, w[:, :, 0, 0], self.bias)
        if kh == 1:
            # Right of the centre is masked in every map (§3.4): keep the left half only.
            return F.conv2d(F.pad(x, (kw // 2, 0, 0, 0)), w[..., : kw // 2 + 1], self.bias)
        return F.conv2d(x, self.full_weight(), self.bias, padding=(kh // 2, kw // 2))

    def channels_first(self, x: torch.Tensor) -> torch.Tensor:
        """This 1x1 convolution of maps laid out channels first, ``(I, ...) -> (O, ...)``:
        one product over every pixel of every image."""
        if self.kernel != (1, 1):
            raise ValueError("channels_first: only a 1x1 convolution reads any layout")
        i, *rest = x.shape
        w = self.masked_weight()[:, :, 0, 0]  # (O, I)
        flat = x.reshape(i, -1)  # (I, N)
        y = w @ flat if self.bias is None else torch.addmm(self.bias.unsqueeze(1), w, flat)
        return y.view(w.shape[0], *rest)

    def extra_repr(self) -> str:
        o, i = self.mask.shape[:2]
        return f"{i}, {o}, kernel={self.kernel}, mask={self.mask_type}"


def pointwise(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1 convolution ``(B, I, H, W) -> (B, O, H, W)`` with weight ``(O, I)``, as one
    batched product ``W @ x_b`` over the ``H * W`` pixels of each image."""
    b, i, height, width = x.shape
    o = w.shape[0]
    flat = x.reshape(b, i, height * width)  # (B, I, HW)
    weights = w.unsqueeze(0).expand(b, o, i)
    if bias is None:
        y = torch.bmm(weights, flat)
    else:
        y = torch.baddbmm(bias.view(1, o, 1).expand(b, o, height * width), weights, flat)
    return y.view(b, o, height, width)

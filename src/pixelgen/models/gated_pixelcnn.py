"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders"): a vertical and a horizontal stack of gated convolutions, without the blind
spot of the PixelCNN (pixelrnn.md §7).

Construction, for kernel ``n`` (``p = n // 2``) and input kernel ``k`` (``r = k // 2``):

* The horizontal stack starts from the shared 7x7 mask-A input layer (``x0``, mask A as
  in every model here); each layer reads its input through a ``1 x (p + 1)`` convolution
  over the current row's left columns and the current pixel, **mask B** colour groups at
  the current pixel (the first, mask-A layer is ``x0``).
* The vertical stack starts from its own ``(r + 1) x k`` convolution of the image (rows
  ``i - r .. i``, all columns ``j - r .. j + r``), then each layer is a ``(p + 1) x n``
  convolution over rows ``i - p .. i`` (zero-padded on top and at the sides). A vertical
  map at row ``i`` therefore sees rows ``<= i``, *including the whole current row within
  its reach*; it is only ever read **shifted down one row**, through a 1x1 convolution
  into the horizontal stack's pre-activation, so row ``i`` of the horizontal stack gets
  the vertical maps of row ``i - 1``: rows strictly above. This is the paper's form
  (shift at the link). The other form (shift inside every vertical layer, maps at row
  ``i`` seeing only rows ``< i``) loses a row per layer: the vertical stack of layer 2
  would no longer see row ``i - 1``, a gap that only the left-reaching horizontal stack
  could partly fill. Because the vertical input reads the image, not the masked ``x0``,
  row ``i - 1`` is seen right of the pixel as fully as the rows above it.
* Every layer is gated, ``tanh(a_f) * sigmoid(a_g)``, the ``2h`` pre-activation split into
  halves of ``h`` maps. In the horizontal stack both halves carry the colour groups of
  ``h`` maps (``groups(h)`` twice), so a product only mixes maps of the same colour. The
  vertical stack needs no colour mask: all it carries reaches the horizontal stack from
  rows above, where every colour is earlier.
* The horizontal stack is residual (1x1 mask B ``h -> 2h``, added to its ``2h`` input) and
  each layer's gated output goes through a 1x1 mask-B skip projection; the head reads the
  sum of the skips (or, without skips, the residual stream), as in the PixelRNNs.

Context of value ``(i, j, c)`` with ``L`` layers: every value of rows ``i - d``,
``1 <= d <= L p + r + 1``, columns ``|j' - j| <= L p + r``; the current row's columns
``j - L p - r .. j - 1``; the earlier colours of ``(i, j)``. No blind spot
(``tests/test_models.py::test_gated_pixelcnn_context_is_complete``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn.masked import MaskedConv2d
from ..registry import register_model
from .base import PixelModel


class VerticalConv(nn.Module):
    """An unmasked ``rows x k`` convolution over rows ``i - rows + 1 .. i`` (columns
    ``j - k//2 .. j + k//2``): the input is zero-padded with ``rows - 1`` rows on top and
    ``k // 2`` columns each side, so the output has the input's size."""

    def __init__(self, in_channels: int, out_channels: int, rows: int, k: int) -> None:
        super().__init__()
        self.rows, self.k = rows, k
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, rows, k))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = 1.0 / math.sqrt(in_channels * rows * k)
        nn.init.uniform_(self.weight, -bound, bound)

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """``F.pad`` order: left, right, top, bottom."""
        return (self.k // 2, self.k // 2, self.rows - 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, I, H, W) -> (B, O, H, W)
        return F.conv2d(F.pad(x, self.padding), self.weight, self.bias)


def gate(a: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``tanh(first half) * sigmoid(second half)`` along ``dim``: ``2h -> h`` maps."""
    f, g = a.chunk(2, dim=dim)
    return torch.tanh(f) * torch.sigmoid(g)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Row ``i`` of the result is row ``i - 1`` of ``x`` (a zero row on top)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class GatedLayer(nn.Module):
    """One layer of both stacks: vertical ``(p+1) x n`` conv, horizontal ``1 x n`` mask-B
    conv (left half and centre), the 1x1 link from the shifted vertical pre-activation."""

    def __init__(self, v_in: int, features: int, hidden: int, kernel: int, groups) -> None:
        super().__init__()
        two_h = 2 * hidden
        self.vertical = VerticalConv(v_in, two_h, kernel // 2 + 1, kernel)
        self.link = nn.Conv2d(two_h, two_h, 1)
        nn.init.zeros_(self.link.bias)
        gate_groups = torch.cat([groups(hidden), groups(hidden)])  # both halves, same colours
        self.horizontal = MaskedConv2d(
            features,
            two_h,
            (1, kernel),
            mask_type="B",
            in_groups=groups(features),
            out_groups=gate_groups,
        )

    def forward(
        self, v: torch.Tensor, h: torch.Tensor, cond: tuple | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v_pre, gated h)``: the vertical pre-activation ``(B, 2h)`` and the horizontal
        gated output ``(B, h)``; the next vertical input is ``gate(v_pre)``. ``cond``: a
        condition's terms ``(B, 2h, H or 1, W or 1)`` for the vertical and the horizontal
        pre-activations (van den Oord et al. 2016, §2.3)."""
        v_pre = self.vertical(v)
        h_pre = self.horizontal(h)  # (B, 2h, H, W)
        if cond is not None:
            v_pre, h_pre = v_pre + cond[0], h_pre + cond[1]
        return v_pre, gate(h_pre + self.link(shift_down(v_pre)))


class GatedPixelCNN(PixelModel):
    """Gated PixelCNN: vertical and horizontal stacks of gated convolutions, residual
    horizontal stack, skip connections into the shared head (see the module docstring)."""

    def __init__(
        self,
        *,
        layers: int = 15,
        kernel: int = 3,
        residual: bool = True,
        skip: bool = True,
        **common,
    ) -> None:
        super().__init__(**common)
        self.residual, self.skip = residual, skip
        f, h, c = self.features, self.hidden, self.channels
        k_in = self.input_conv.kernel[0]
        self.vertical_input = VerticalConv(c, f, k_in // 2 + 1, k_in)
        self.layers = nn.ModuleList(
            GatedLayer(f if l == 0 else h, f, h, kernel, self.groups) for l in range(layers)
        )
        n_res = layers - 1 if skip else layers
        self.res = nn.ModuleList(self._proj(h, f) for _ in range(n_res))
        self.skips = nn.ModuleList(self._proj(h, f) for _ in range(layers)) if skip else None
        # Terms 2l and 2l + 1: layer l's vertical and horizontal pre-activations.
        self.add_condition([2 * h] * (2 * layers))

    def _proj(self, i: int, o: int) -> MaskedConv2d:
        return MaskedConv2d(
            i, o, 1, mask_type="B", in_groups=self.groups(i), out_groups=self.groups(o)
        )

    def forward_scaled(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        terms = self.cond_terms(self.cond_map(cond, x))
        return self.head(self.stacks(self.vertical_input(x), self.input_conv(x), terms))

    def body(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError("the vertical stack reads the image: use forward_scaled")

    def stacks(
        self, v: torch.Tensor, h: torch.Tensor, terms: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Both stacks from their inputs ``(B, 2h, H, W)``: the head's ``2h`` input.
        ``terms``: the condition's, two per layer (vertical, horizontal), or None."""
        out = 0
        for l, layer in enumerate(self.layers):
            cond = None if terms is None else terms[2 * l : 2 * l + 2]
            v_pre, y = layer(v, h, cond)  # (B, 2h, H, W), (B, h, H, W)
            v = gate(v_pre)
            if self.skips is not None:
                out = out + self.skips[l](y)
            if l < len(self.res):
                h = h + self.res[l](y) if self.residual else self.res[l](y)
        return out if self.skips is not None else h


@register_model
def gated_pixelcnn(**kwargs) -> GatedPixelCNN:
    return GatedPixelCNN(**kwargs)

"""Fast Gated PixelCNN sampling: cached windows for both stacks.

The vertical stack at row ``i`` sees only rows ``<= i`` and is read by the horizontal
stack one row lower, so it is computed a whole row at a time when that row is complete
(``start_row(x, i + 1)``): its input convolution and every layer keep the last ``rows``
rows of their input (zero rows above the image, zero columns at the sides, as the model
pads them), and each layer's 1x1 link of its pre-activation is kept for row ``i + 1``
(at row 0 the link reads zeros: its bias). The horizontal stack at pixel ``(i, j)`` is
one position of each ``1 x (n//2 + 1)`` mask-B convolution (``WindowConv``, the current
row's left columns cached) plus the cached link, then the 1x1 residual and skip
projections as matmuls. Where the extension is built both stacks run natively: the
vertical one once per finished row (``native_body.vertical_stack``, which writes the link
rows in place) and the horizontal one at each pixel (``native_body.gated_body``, which
reads them and the same windows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .cache import CachedStepper, Pointwise, WindowConv
from .native_body import gated_body, vertical_stack
from .stepper import register_stepper

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.gated_pixelcnn import GatedPixelCNN


def _gate(a: torch.Tensor, dim: int) -> torch.Tensor:
    f, g = a.chunk(2, dim=dim)
    return torch.tanh(f) * torch.sigmoid(g)


class _RowWindow:
    """The last ``rows`` rows of a vertical convolution's input, channels first, padded
    as ``VerticalConv`` pads them; ``push`` adds a row and returns the conv's output row."""

    def __init__(self, conv, batch: int, width: int) -> None:
        self.conv = conv
        self.weight, self.bias, self.pad = conv.weight, conv.bias, conv.k // 2
        _, in_maps, rows, _ = conv.weight.shape
        self.buf = conv.weight.new_zeros(batch, in_maps, rows, width + 2 * self.pad)

    def push(self, row: torch.Tensor) -> torch.Tensor:  # (B, I, W) -> (B, O, W)
        row = F.pad(row, (self.pad, self.pad)).unsqueeze(2)
        self.buf = torch.cat([self.buf[:, :, 1:], row], 2)
        return F.conv2d(self.buf, self.weight, self.bias)[:, :, 0]


@register_stepper("pixelgen.models.gated_pixelcnn.GatedPixelCNN")
class GatedPixelCNNStepper(CachedStepper):
    def __init__(self, model: GatedPixelCNN, x: torch.Tensor, cond=None) -> None:
        super().__init__(model, x, cond)
        self.residual = model.residual
        b, w = self.batch, self.width
        self.v_input = _RowWindow(model.vertical_input, b, w)
        self.vertical = [_RowWindow(layer.vertical, b, w) for layer in model.layers]
        self.links = [(layer.link.weight[:, :, 0, 0], layer.link.bias) for layer in model.layers]
        # Row 0 reads the vertical stack of the zero row above the image: the link's bias.
        # Updated in place at each row (the native body and stack hold the same storage),
        # so always a copy: at batch 1 and width 1 `contiguous` would return the bias itself.
        self.link_rows = [bias.expand(b, w, -1).clone(memory_format=torch.contiguous_format)
                          for _, bias in self.links]  # fmt: skip
        self.horizontal = [WindowConv(layer.horizontal, b, w) for layer in model.layers]
        self.res = [Pointwise(r) for r in model.res]
        self.skips = None if model.skips is None else [Pointwise(s) for s in model.skips]
        self.native = gated_body(self)  # None: the Python body_step below
        self.native_vertical = vertical_stack(self)  # None: the Python start_row below

    def start_row(self, x: torch.Tensor, i: int) -> None:
        if i > 0 and self.native_vertical is not None:
            row = self.model.scale(x[:, :, i - 1]).transpose(1, 2).contiguous()  # (B, W, C)
            self.native_vertical.push(row, i - 1)
        elif i > 0:  # row i - 1 is complete: its vertical stack, for row i's links
            v = self.v_input.push(self.model.scale(x[:, :, i - 1]))  # (B, 2h, W)
            for l, window in enumerate(self.vertical):
                v_pre = window.push(v)  # (B, 2h, W)
                if self.terms is not None:  # the condition's vertical term, row i - 1
                    v_pre = v_pre + self.terms.row(2 * l, i - 1).transpose(1, 2)
                w, bias = self.links[l]
                self.link_rows[l].copy_(F.linear(v_pre.transpose(1, 2), w, bias))  # (B, W, 2h)
                v = _gate(v_pre, 1)
        super().start_row(x, i)

    def body_row(self, i: int) -> None:
        if self.native is not None:  # the same windows, moved on in one call
            self.native.start_row(i)
        elif i > 0:
            for conv in self.horizontal:
                conv.next_row()

    def body_step(self, f: torch.Tensor, i: int, j: int) -> torch.Tensor:
        if self.native is not None:
            return self.native.step(f, i, j)
        out = 0
        for l, conv in enumerate(self.horizontal):  # f: (B, 2h)
            conv.put(j, f)
            a = conv(j) + self.link_rows[l][:, j]  # (B, 2h)
            if self.terms is not None:
                a = a + self.terms.at(2 * l + 1, i, j)
            y = _gate(a, 1)  # (B, h)
            if self.skips is not None:
                out = out + self.skips[l](y)
            if l < len(self.res):
                f = f + self.res[l](y) if self.residual else self.res[l](y)
        return out if self.skips is not None else f

"""Fast PixelCNN sampling (§3.3), caching in the manner of Ramachandran et al. (2017).

Block ``l`` at pixel ``(i, j)`` needs its k x k mask-B convolution's input (the ReLU of
the 1x1 reduction) at rows ``i - k//2 .. i``: the rows above and the current row's left
columns were computed at earlier pixels and are cached; only ``(i, j)`` is new. The 1x1
convolutions around it are matmuls at ``(i, j)``. Each pixel therefore costs one
position of every layer instead of a forward pass over the whole image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .cache import CachedStepper, Pointwise, WindowConv
from .native_body import pixelcnn_body
from .stepper import register_stepper

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.pixelcnn import PixelCNN


@register_stepper("pixelgen.models.pixelcnn.PixelCNN")
class PixelCNNStepper(CachedStepper):
    def __init__(self, model: PixelCNN, x: torch.Tensor, cond=None) -> None:
        super().__init__(model, x, cond)
        self.residual = model.residual
        self.blocks = [
            (Pointwise(b.reduce), WindowConv(b.conv, self.batch, self.width), Pointwise(b.expand))
            for b in model.blocks
        ]
        self.native = pixelcnn_body(self)  # None: the Python body below

    def body_row(self, i: int) -> None:
        if self.native is not None:  # the same windows, moved on in one call
            self.native.start_row(i)
        elif i > 0:
            for _, conv, _ in self.blocks:
                conv.next_row()

    def body_step(self, f: torch.Tensor, i: int, j: int) -> torch.Tensor:
        if self.native is not None:
            return self.native.step(f, i, j)
        for l, (reduce, conv, expand) in enumerate(self.blocks):  # f: (B, 2h)
            conv.put(j, F.relu(reduce(F.relu(f))))  # (B, h)
            a = conv(j) if self.terms is None else conv(j) + self.terms.at(l, i, j)  # (B, h)
            y = expand(F.relu(a))  # (B, 2h)
            f = f + y if self.residual else y
        return f

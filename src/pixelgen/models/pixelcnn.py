"""PixelCNN (§3.3): a fully convolutional stack of residual blocks with masked 3x3
convolutions. Every conditional is computed in parallel in training; the receptive
field grows by one pixel per block and has the blind spot of masked convolutions
(pixels above and further right than the diagonal are never seen)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn.masked import MaskedConv2d
from ..nn.residual import residual_stack
from ..nn.residual import usable as stack_usable
from ..registry import register_model
from .base import PixelModel, may_bypass


class ResidualBlock(nn.Module):
    """ReLU, 1x1 (2h->h), ReLU, kxk mask B (h->h), ReLU, 1x1 (h->2h); all mask B."""

    def __init__(self, features: int, hidden: int, kernel: int, groups) -> None:
        super().__init__()

        def conv(i: int, o: int, k: int) -> MaskedConv2d:
            return MaskedConv2d(i, o, k, mask_type="B", in_groups=groups(i), out_groups=groups(o))

        self.reduce = conv(features, hidden, 1)
        self.conv = conv(hidden, hidden, kernel)
        self.expand = conv(hidden, features, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 2h, H, W) -> (B, 2h, H, W)``; ``cond``: a condition's term ``(B, h, H or 1,
        W or 1)``, added to the kxk convolution before its ReLU (§3.5)."""
        y = self.reduce(F.relu(x))
        y = self.conv(F.relu(y))  # (B, h, H, W)
        if cond is not None:
            y = y + cond
        return self.expand(F.relu(y))

    def weights(self) -> list[torch.Tensor]:
        """The masked weights and biases in :func:`residual_stack`'s order."""
        return [
            *(self.reduce.masked_weight()[:, :, 0, 0], self.reduce.bias),
            *(self.conv.masked_weight(), self.conv.bias),
            *(self.expand.masked_weight()[:, :, 0, 0], self.expand.bias),
        ]


class PixelCNN(PixelModel):
    """PixelCNN: 7x7 mask-A input, residual blocks of 3x3 mask-B convolutions (§3.3)."""

    def __init__(
        self, *, layers: int = 15, kernel: int = 3, residual: bool = True, **common
    ) -> None:
        super().__init__(**common)
        self.residual = residual
        self.blocks = nn.ModuleList(
            ResidualBlock(self.features, self.hidden, kernel, self.groups) for _ in range(layers)
        )
        # The block's kxk convolution is its spatial layer, the LSTMs' input-to-state:
        # the condition joins there, before the ReLU (h maps per block).
        self.add_condition([self.hidden] * layers)

    def body(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self._stackable(x):
            # The same blocks in one autograd function: fewer passes over memory.
            weights = [w for block in self.blocks for w in block.weights()]
            return residual_stack(x, weights, self.cond_terms(cond))
        terms = self.cond_terms(cond) or [None] * len(self.blocks)
        for k, (block, t) in enumerate(zip(self.blocks, terms, strict=True)):
            if not self.residual:
                x = block(x, t)
            elif k == 0:
                x = x + block(x, t)  # a new tensor: the caller's ``x`` stays as it was
            else:
                # In place: autograd saves no block input (the ReLUs keep their outputs),
                # and the add writes into memory the step already holds.
                x = x.add_(block(x, t))
        return x

    def _stackable(self, x: torch.Tensor) -> bool:
        """Whether ``nn.residual`` may run the blocks, which computes what the blocks and
        their ``MaskedConv2d`` layers compute without calling them (:func:`may_bypass`)."""
        if not (self.residual and stack_usable(x)):
            return False
        layers = [m for block in self.blocks for m in block.children()]
        return may_bypass(self.blocks, ResidualBlock) and may_bypass(layers, MaskedConv2d)


@register_model
def pixelcnn(**kwargs) -> PixelCNN:
    return PixelCNN(**kwargs)

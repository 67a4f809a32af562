"""The residual and skip wiring of the two PixelRNNs (§3.4) at one position, shared by
the Row LSTM and Diagonal BiLSTM steppers; it mirrors ``RecurrentPixelModel.body``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .cache import CachedStepper, Pointwise

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.base import RecurrentPixelModel


class RecurrentStepper(CachedStepper):
    def __init__(self, model: RecurrentPixelModel, x: torch.Tensor, cond=None) -> None:
        super().__init__(model, x, cond)
        self.residual = model.residual
        self.res = [Pointwise(p) for p in model.res]
        self.skips = [Pointwise(p) for p in model.skips] if model.skips is not None else None

    def body_step(self, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        out = 0
        for l in range(len(self.model.rnns)):
            y = self.layer_step(l, x, i, j)  # (B, h)
            if self.skips is not None:
                out = out + self.skips[l](y)
            if l < len(self.res):
                x = x + self.res[l](y) if self.residual else self.res[l](y)
        return out if self.skips is not None else x

    def layer_step(self, l: int, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """Recurrent layer ``l`` at ``(i, j)``: input ``(B, 2h)`` -> hidden ``(B, h)``."""
        raise NotImplementedError

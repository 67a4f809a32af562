"""The reference sampler: one full forward pass per value (§2: generation is sequential).

Slow, but it uses nothing but ``model(x)``, so it is what the fast steppers are checked
against and what any new model falls back to."""

from __future__ import annotations

import torch

from .stepper import Stepper


class NaiveStepper(Stepper):
    stateful = False

    def logits(self, x: torch.Tensor, i: int, j: int, c: int) -> torch.Tensor:
        return self.model(x, self.cond)[:, :, c, i, j]  # (B, L)

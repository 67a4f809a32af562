"""The plain reference layers: the yardstick for the optimized ones in ``pixelgen.nn``.

Each is the layer it checks with its optimized ``forward`` replaced by the paper's
formulation (§3.1 Row LSTM, §3.2 Diagonal BiLSTM, §3.4 masked convolutions), one autograd
op after another: ``conv2d`` of the padded input with ``weight * mask`` for every kernel
shape; a Python loop over rows (Row LSTM) or skewed columns (Diagonal BiLSTM, both
directions one after the other), ``torch.stack`` of the steps. These are the loops the
optimized layers also run under tracing for export. Being subclasses, they have the very
parameters, buffers and constructors of the optimized layers, so one ``state_dict`` fits
both; ``tests/test_layers.py`` checks that outputs and gradients agree, and ``make bench``
times them side by side.

:func:`reference_model` turns any pixelgen model into its reference twin: a deep copy
whose masked convolutions and recurrent layers run these ``forward`` methods.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .diagonal_lstm import DiagonalBiLSTM
from .masked import MaskedConv2d
from .row_lstm import RowLSTM


class RefMaskedConv2d(MaskedConv2d):
    """``conv2d(pad(x), weight * mask)``, whatever the kernel's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, I, H, W) -> (B, O, H, W)
        return F.conv2d(F.pad(x, self.padding), self.masked_weight(), self.bias)


class RefRowLSTM(RowLSTM):
    """Row LSTM (§3.1), one row per loop step."""

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:  # (B, I, H, W) -> (B, h, H, W)
        gates = self.input_to_state(x)
        return self._traceable(gates if cond is None else gates + cond)


class RefDiagonalBiLSTM(DiagonalBiLSTM):
    """``L2R(x) + shift_down(mirror(R2L(mirror(x))))``, each direction one skewed column per
    loop step (``DiagonalLSTM.forward``), the directions one after the other; the
    right-to-left one reads the mirrored raw image too where it has ``raw_to_state``, and
    both a condition's term."""

    def forward(self, x: torch.Tensor, raw=None, cond=None) -> torch.Tensor:
        return self.plain(x, raw, cond)  # (B, I, H, W) -> (B, h, H, W)


#: The optimized class -> its reference (exact classes: a subclass may differ in math).
TWINS: dict[type, type] = {
    MaskedConv2d: RefMaskedConv2d,
    RowLSTM: RefRowLSTM,
    DiagonalBiLSTM: RefDiagonalBiLSTM,
}


def to_reference(module: nn.Module) -> nn.Module:
    """Make every optimized layer inside ``module`` (itself included) run its reference
    ``forward``, in place; the parameters and buffers are untouched. Returns ``module``."""
    for m in module.modules():
        twin = TWINS.get(type(m))
        if twin is not None:
            m.__class__ = twin  # a subclass adding no state: only forward changes
    return module


def reference_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` running the reference layers, with identical weights."""
    return to_reference(copy.deepcopy(model))

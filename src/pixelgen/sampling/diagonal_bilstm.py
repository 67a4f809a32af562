"""Fast Diagonal BiLSTM sampling (§3.2).

Left to right, the state at pixel ``(i, j)`` reads its own states at ``(i, j - 1)`` and
``(i - 1, j)`` (both earlier, cached) and the 1x1 input-to-state at ``(i, j)``; the cell
state comes from ``(i, j - 1)``. Skew padding carries zero state, so column 0 and row 0
start from zeros, as in ``DiagonalLSTM.forward``.

Right to left, the layer only adds its state from row ``i - 1`` (the output is shifted
down one row), which needs the layer's complete input row ``i - 1``. So when row ``i``
starts, the right-to-left scan runs over row ``i - 1`` from ``j = W - 1`` down to 0,
reading its own states at row ``i - 2`` and the cached inputs of row ``i - 1``. Those
inputs are final for every layer at once, so the scans of all layers run together as
batched matmuls. With ``complete_context`` the first layer's scan also reads the scaled
raw image of row ``i - 1``, final too when row ``i`` starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..nn.lstm import lstm_update
from .cache import Pointwise
from .native_body import diagonal_body, right_scan
from .recurrent import RecurrentStepper
from .stepper import register_stepper

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.diagonal_bilstm import DiagonalBiLSTMModel


@register_stepper("pixelgen.models.diagonal_bilstm.DiagonalBiLSTMModel")
class DiagonalBiLSTMStepper(RecurrentStepper):
    def __init__(self, model: DiagonalBiLSTMModel, x: torch.Tensor, cond=None) -> None:
        super().__init__(model, x, cond)
        b, w = self.batch, self.width
        rnns = list(model.rnns)
        n, h, f = len(rnns), model.hidden, model.features
        self.left_in = [Pointwise(r.left.input_to_state) for r in rnns]
        self.left_ss = [r.left.state_to_state for r in rnns]  # (4h, 2h): [above, left]
        # Right-to-left parameters stacked over layers for the batched row scans.
        right = [Pointwise(r.right.input_to_state) for r in rnns]
        self.right_in_t = torch.stack([p.weight.t() for p in right])  # (n, 2h, 4h)
        self.right_in_b = torch.stack([p.bias for p in right]).unsqueeze(1)  # (n, 1, 4h)
        self.right_ss_t = torch.stack([r.right.state_to_state.t() for r in rnns])  # (n, 2h, 4h)
        raw = rnns[0].right.raw_to_state  # (4h, C): complete context, first layer only
        self.raw_t = None if raw is None else raw.t()  # (C, 4h)
        self.raw_above = None  # the scaled raw image of row i - 1, (B, W, C)
        like = self.input.weight
        self.inputs = like.new_zeros(n, b, w, f)  # each layer's input on the current row
        # Left-to-right states of the current row; index 0 is the zero state left of column 0.
        self.h = like.new_zeros(n, b, w + 1, h)
        self.c = like.new_zeros(n, b, w + 1, h)
        self.h_above = like.new_zeros(n, b, w, h)  # left-to-right states of row i - 1
        self.right_above = like.new_zeros(n, b, w, h)  # right-to-left states of row i - 1
        # Every row state is updated in place: a native body (native_body.py) holds the
        # same storage.
        self.native = diagonal_body(self)  # None: the Python layer_step below
        self.native_right = right_scan(self)  # None: the Python loop in _right_scan

    def start_row(self, x: torch.Tensor, i: int) -> None:
        if i > 0 and self.raw_t is not None:
            self.raw_above = self.model.scale(x[:, :, i - 1]).transpose(1, 2)  # (B, W, C)
        super().start_row(x, i)

    def body_row(self, i: int) -> None:
        if i == 0:
            return
        self.right_above.copy_(self._right_scan(self.inputs, self.right_above, i - 1))
        self.h_above.copy_(self.h[:, :, 1:])
        self.h.zero_()
        self.c.zero_()
        self.inputs.zero_()

    def body_step(self, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        if self.native is not None:
            return self.native.step(x, i, j)
        return super().body_step(x, i, j)

    def _right_scan(self, inputs: torch.Tensor, above: torch.Tensor, row: int) -> torch.Tensor:
        """Right-to-left states of finished row ``row`` from its layer inputs ``(n, B, W,
        2h)`` and the states of the row above ``(n, B, W, h)``; returns ``(n, B, W, h)``."""
        n, b, w, f = inputs.shape
        gates_in = torch.baddbmm(self.right_in_b, inputs.reshape(n, b * w, f), self.right_in_t)
        gates_in = gates_in.view(n, b, w, -1)  # (n, B, W, 4h)
        if self.raw_t is not None:  # the first layer's unmasked term from the raw image
            gates_in[0] += torch.matmul(self.raw_above, self.raw_t)
        if self.terms is not None:  # the condition's: term 2l + 1 is layer l's right-to-left
            gates_in = gates_in + torch.stack([self.terms.row(2 * l + 1, row) for l in range(n)])
        if self.native_right is not None:
            return self.native_right.run(gates_in.contiguous(), above.contiguous())
        h = torch.zeros_like(above[:, :, 0])  # (n, B, h): zero state right of column W-1
        c = torch.zeros_like(h)
        out = torch.empty_like(above)
        for j in range(w - 1, -1, -1):
            prev = torch.cat([above[:, :, j], h], dim=-1)  # (n, B, 2h): [above, right]
            h, c = lstm_update(torch.baddbmm(gates_in[:, :, j], prev, self.right_ss_t), c, dim=-1)
            out[:, :, j] = h
        return out

    def layer_step(self, l: int, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        self.inputs[l, :, j] = x  # x: (B, 2h)
        prev = torch.cat([self.h_above[l, :, j], self.h[l, :, j]], dim=-1)  # [above, left]
        gates = self.left_in[l](x) + F.linear(prev, self.left_ss[l])  # (B, 4h)
        if self.terms is not None:
            gates = gates + self.terms.at(2 * l, i, j)
        h, c = lstm_update(gates, self.c[l, :, j], dim=-1)
        self.h[l, :, j + 1], self.c[l, :, j + 1] = h, c
        return h + self.right_above[l, :, j]

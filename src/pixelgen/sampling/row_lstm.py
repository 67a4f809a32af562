"""Fast Row LSTM sampling (§3.1).

Layer ``l`` at pixel ``(i, j)``: the mask-B ``1 x k`` input-to-state convolution reads the
layer's input at ``(i, j - k//2 .. j)`` (cached, plus the current position); the
state-to-state convolution ``K_ss ⊛ h_{i-1}`` reads only the finished row above, so it is
computed for the whole row once when row ``i`` starts; the cell state comes from
``c_{i-1}`` at column ``j``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..nn.lstm import lstm_update
from .cache import WindowConv
from .native_body import row_lstm_body
from .recurrent import RecurrentStepper
from .stepper import register_stepper

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.row_lstm import RowLSTMModel


@register_stepper("pixelgen.models.row_lstm.RowLSTMModel")
class RowLSTMStepper(RecurrentStepper):
    def __init__(self, model: RowLSTMModel, x: torch.Tensor, cond=None) -> None:
        super().__init__(model, x, cond)
        b, w = self.batch, self.width
        self.input_to_state = [WindowConv(r.input_to_state, b, w) for r in model.rnns]
        self.state_to_state = [r.state_to_state for r in model.rnns]  # (4h, h, k)
        like = self.input.weight
        # Row i's hidden and cell states, channels last; they become "previous" at row i+1.
        self.h = [like.new_zeros(b, w, r.hidden) for r in model.rnns]
        self.c = [like.new_zeros(b, w, r.hidden) for r in model.rnns]
        self.c_prev = [torch.zeros_like(c) for c in self.c]
        # The state-to-state gates of the current row, (B, W, 4h). Every row state is
        # updated in place: a native body (native_body.py) holds the same storage.
        self.gates_ss = [like.new_zeros(b, w, 4 * r.hidden) for r in model.rnns]
        self.native = row_lstm_body(self)  # None: the Python layer_step below

    def body_row(self, i: int) -> None:
        if self.native is not None:
            self.native.start_row(i)
            return
        for l, k_ss in enumerate(self.state_to_state):
            h_prev = self.h[l].transpose(1, 2)  # (B, h, W); zeros above row 0
            ss = F.conv1d(h_prev, k_ss, padding=k_ss.shape[-1] // 2)  # (B, 4h, W)
            self.gates_ss[l].copy_(ss.transpose(1, 2))
            self.c_prev[l].copy_(self.c[l])
            self.h[l].zero_()
            self.c[l].zero_()
            if i > 0:
                self.input_to_state[l].next_row()

    def body_step(self, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        if self.native is not None:
            return self.native.step(x, i, j)
        return super().body_step(x, i, j)

    def layer_step(self, l: int, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        conv = self.input_to_state[l]
        conv.put(j, x)  # x: (B, 2h)
        gates = conv(j) + self.gates_ss[l][:, j]  # (B, 4h)
        if self.terms is not None:
            gates = gates + self.terms.at(l, i, j)
        h, c = lstm_update(gates, self.c_prev[l][:, j], dim=-1)
        self.h[l][:, j], self.c[l][:, j] = h, c
        return h

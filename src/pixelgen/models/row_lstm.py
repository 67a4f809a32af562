"""Row LSTM (§3.1): a stack of row-by-row LSTM layers with residual and skip connections.
Its receptive field is a triangle above each pixel, widening by one pixel per row."""

from __future__ import annotations

import torch

from ..nn.row_lstm import RowLSTM, to_rows
from ..registry import register_model
from .base import RecurrentPixelModel, may_bypass


class RowLSTMModel(RecurrentPixelModel):
    """Row LSTM: k x 1 mask-B input-to-state, k x 1 state-to-state over the row above (§3.1)."""

    def __init__(self, *, input_state_kernel: int = 3, state_kernel: int = 3, **common) -> None:
        self.kernels = (input_state_kernel, state_kernel)
        super().__init__(**common)

    def make_layer(self, in_channels: int, hidden: int) -> RowLSTM:
        k_is, k_ss = self.kernels
        return RowLSTM(
            in_channels=in_channels,
            hidden=hidden,
            colours=self.channels,
            input_state_kernel=k_is,
            state_kernel=k_ss,
        )

    def body(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, raw=None) -> torch.Tensor:
        # ``RowLSTM.rows`` runs the layers without calling them (the projections are called).
        if torch.jit.is_tracing() or raw is not None or not may_bypass(self.rnns, RowLSTM):
            return super().body(x, cond, raw=raw)  # export, reference twins, hooks
        # The whole stack in the rows' layout (H, C, B, W): the layers' gates and states
        # are then never copied between layouts, only the stream once in and once out.
        conds = [None if c is None else to_rows(c) for c in self.layer_conds(cond)]
        rows = self.stack(to_rows(x).contiguous(), conds, lambda l, rnn, x, c: rnn.rows(x, c))
        return to_rows(rows)  # (B, 2h, H, W), a view


@register_model
def row_lstm(**kwargs) -> RowLSTMModel:
    return RowLSTMModel(**kwargs)

"""Row LSTM (§3.1): a stack of row-by-row LSTM layers with residual and skip connections.
Its receptive field is a triangle above each pixel, widening by one pixel per row."""

from __future__ import annotations

from ..nn.row_lstm import RowLSTM
from ..registry import register_model
from .base import RecurrentPixelModel


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


@register_model
def row_lstm(**kwargs) -> RowLSTMModel:
    return RowLSTMModel(**kwargs)

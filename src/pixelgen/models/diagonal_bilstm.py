"""Diagonal BiLSTM (§3.2): LSTM layers along the image's diagonals in both directions.
Its context is complete but for one value (see ``docs``/README: the last value of the
previous row, for pixels more than ``input_kernel // 2`` columns from the right edge)."""

from __future__ import annotations

from ..nn.diagonal_lstm import DiagonalBiLSTM
from ..registry import register_model
from .base import RecurrentPixelModel


class DiagonalBiLSTMModel(RecurrentPixelModel):
    """Diagonal BiLSTM: skewed 1x1 mask-B input-to-state, 2x1 state-to-state, both directions."""

    def make_layer(self, in_channels: int, hidden: int) -> DiagonalBiLSTM:
        return DiagonalBiLSTM(in_channels=in_channels, hidden=hidden, colours=self.channels)


@register_model
def diagonal_bilstm(**kwargs) -> DiagonalBiLSTMModel:
    return DiagonalBiLSTMModel(**kwargs)

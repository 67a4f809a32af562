"""Building blocks: masks, masked convolutions and the two recurrent layers (§3)."""

from .diagonal_lstm import DiagonalBiLSTM, skew, unskew
from .masked import MaskedConv2d
from .masks import channel_groups, conv_mask
from .row_lstm import RowLSTM

__all__ = [
    "DiagonalBiLSTM",
    "MaskedConv2d",
    "RowLSTM",
    "channel_groups",
    "conv_mask",
    "skew",
    "unskew",
]

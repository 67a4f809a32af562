"""The paper's three models, one file each; importing this package registers them."""

from .base import PixelModel
from .diagonal_bilstm import DiagonalBiLSTMModel, diagonal_bilstm
from .pixelcnn import PixelCNN, pixelcnn
from .row_lstm import RowLSTMModel, row_lstm

__all__ = [
    "DiagonalBiLSTMModel",
    "PixelCNN",
    "PixelModel",
    "RowLSTMModel",
    "diagonal_bilstm",
    "pixelcnn",
    "row_lstm",
]

"""The paper's three models and the Gated PixelCNN, one file each, and the Multi-Scale
PixelRNN built from them (§3.5); importing this package registers them."""

from .base import PixelModel
from .diagonal_bilstm import DiagonalBiLSTMModel, diagonal_bilstm
from .gated_pixelcnn import GatedPixelCNN, gated_pixelcnn
from .multiscale import MultiScalePixelRNN, multiscale
from .pixelcnn import PixelCNN, pixelcnn
from .row_lstm import RowLSTMModel, row_lstm

__all__ = [
    "DiagonalBiLSTMModel",
    "GatedPixelCNN",
    "MultiScalePixelRNN",
    "PixelCNN",
    "PixelModel",
    "RowLSTMModel",
    "diagonal_bilstm",
    "gated_pixelcnn",
    "multiscale",
    "pixelcnn",
    "row_lstm",
]

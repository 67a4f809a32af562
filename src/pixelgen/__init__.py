"""pixelgen: autoregressive image models from *Pixel Recurrent Neural Networks*
(van den Oord, Kalchbrenner, Kavukcuoglu, 2016): PixelCNN, Row LSTM, Diagonal BiLSTM."""

from __future__ import annotations

from . import models  # noqa: F401  (each model registers itself)
from .registry import create_model, list_models, model_hparams, register_model

__version__ = "0.1.0"

__all__ = ["create_model", "list_models", "load_model", "model_hparams", "register_model"]


def load_model(path, **kwargs):
    """Rebuild a model from a checkpoint (``.pt``), a run directory, a safetensors export,
    or a shipped model's name (``pixelgen pretrained``), in eval mode."""
    from .sources import load_model as _load

    return _load(path, **kwargs)

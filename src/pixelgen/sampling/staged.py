"""Generators of models whose order is not one raster pass: a composite model
(``registry``) generates in stages, each stage a raster-order completion by one of its
parts through the ordinary driver (the Multi-Scale PixelRNN, §3.5: ``multiscale.py``).

Keyed by the class's import path, like the steppers (``stepper.py``), so sampling does not
import the models."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .stepper import class_path

#: ``staged(model, x, known, *, generate, generator, temperature, method, progress,
#: on_logits, cond) -> x``: ``known`` already expanded to ``x``; ``generate`` the driver's.
Staged = Callable[..., torch.Tensor]

_STAGED: dict[str, Staged] = {}


def register_staged(model_class: str) -> Callable[[Staged], Staged]:
    """Decorator: the staged generator of exactly the model class at ``model_class``."""

    def deco(fn: Staged) -> Staged:
        _STAGED[model_class] = fn
        return fn

    return deco


def staged_generator(model: torch.nn.Module) -> Staged | None:
    """The staged generator of the model's class, or None (one raster pass)."""
    return _STAGED.get(class_path(type(model)))

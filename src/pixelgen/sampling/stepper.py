"""What the raster-order driver asks of a sampling method, and the registry of the fast
stepper of each model class.

The registry is keyed by the class's import path, not the class itself, so that sampling
does not import the models (which import sampling for ``model.sample``): the layers go
models -> sampling, never back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class Stepper:
    """Gives the logits of one pixel at a time, visited in raster order.

    The driver calls ``start_row(x, i)`` before row ``i`` and ``logits(x, i, j, c)`` for
    each colour ``c`` of pixel ``(i, j)`` still to be drawn (``x`` then holds every earlier
    value and the pixel's earlier colours). A ``stateful`` stepper caches what it computes
    and must see every pixel at least once, its last call for the last colour. ``cond`` is
    the model's prepared condition map ``(B, c, H or 1, W or 1)`` (``model.cond_map``), or
    None for an unconditional model.
    """

    stateful = True

    def __init__(
        self, model: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> None:
        self.model = model
        self.cond = cond

    def start_row(self, x: torch.Tensor, i: int) -> None:
        pass

    def logits(self, x: torch.Tensor, i: int, j: int, c: int) -> torch.Tensor:  # -> (B, L)
        raise NotImplementedError


_STEPPERS: dict[str, type[Stepper]] = {}


def class_path(cls: type) -> str:
    """``"pixelgen.models.pixelcnn.PixelCNN"``: the key of a model class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register_stepper(model_class: str) -> Callable[[type[Stepper]], type[Stepper]]:
    """Class decorator: the fast stepper of exactly the model class at import path
    ``model_class`` (not its subclasses, whose math may differ)."""

    def deco(cls: type[Stepper]) -> type[Stepper]:
        _STEPPERS[model_class] = cls
        return cls

    return deco


def fast_stepper(model: torch.nn.Module) -> type[Stepper] | None:
    """The fast stepper of the model's class, or None if it has none."""
    return _STEPPERS.get(class_path(type(model)))

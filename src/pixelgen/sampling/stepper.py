"""What the raster-order driver asks of a sampling method, and the registry that picks the
fast stepper of a model class (falling back to the naive one with a warning)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch


class Stepper:
    """Gives the logits of one pixel at a time, visited in raster order.

    The driver calls ``start_row(x, i)`` before row ``i`` and ``logits(x, i, j, c)`` for
    each colour ``c`` of pixel ``(i, j)`` still to be drawn (``x`` then holds every earlier
    value and the pixel's earlier colours). A ``stateful`` stepper caches what it computes
    and must see every pixel at least once, its last call for the last colour.
    """

    stateful = True

    def __init__(self, model: torch.nn.Module, x: torch.Tensor) -> None:
        self.model = model

    def start_row(self, x: torch.Tensor, i: int) -> None:
        pass

    def logits(self, x: torch.Tensor, i: int, j: int, c: int) -> torch.Tensor:  # -> (B, L)
        raise NotImplementedError


_STEPPERS: dict[type, type[Stepper]] = {}


def register_stepper(model_class: type) -> Callable[[type[Stepper]], type[Stepper]]:
    """Class decorator: the fast stepper of exactly ``model_class`` (not its subclasses,
    whose math may differ)."""

    def deco(cls: type[Stepper]) -> type[Stepper]:
        _STEPPERS[model_class] = cls
        return cls

    return deco


def fast_stepper(model: torch.nn.Module) -> type[Stepper]:
    """The model's fast stepper, or the naive one (with a warning) if it has none."""
    cls = _STEPPERS.get(type(model))
    if cls is None:
        from .naive import NaiveStepper

        warnings.warn(
            f"no fast sampler for {type(model).__name__}: using the naive one "
            "(one forward pass per value)",
            stacklevel=3,
        )
        return NaiveStepper
    return cls

"""What a recipe's ``model.condition`` asks of the data, and how a checkpoint records it
(§3.5 of the paper; the mechanism itself is ``pixelgen.nn.condition``).

``class``: the model is conditioned on the image's class, a one-hot vector of the data
set's classes (``cond_channels`` = their number). Its data sets yield ``(image, label)``
and a set without labels is a one-line ``ConditionError`` naming ``model.condition``.
The checkpoint's data description holds the class names, so ``eval``, ``sample``,
``complete`` and ``export`` need nothing but the checkpoint.

A new kind of condition is a value of ``config.ConditionKind`` and a case in each
function here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConditionError


@dataclass(frozen=True)
class ConditionInfo:
    """A conditional model's condition: its kind and, for ``class``, the class names."""

    kind: str
    names: tuple[str, ...] = ()

    @property
    def classes(self) -> int:
        return len(self.names)

    @property
    def channels(self) -> int:
        """The model's ``cond_channels``."""
        return self.classes

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": self.classes, "names": list(self.names)}


def for_data(kind: str | None, dataset) -> ConditionInfo | None:
    """The condition ``kind`` (None: unconditional) on ``dataset``, whose items then become
    ``(image, label)``; a set without labels is a ``ConditionError`` naming the key."""
    if kind is None:
        return None
    if kind == "class":
        dataset.with_labels("model.condition")
        return ConditionInfo("class", tuple(dataset.class_names))
    raise ConditionError(f"model.condition: unknown kind {kind!r}")


def label_data(info: ConditionInfo | None, dataset) -> None:
    """Make ``dataset``'s items what a model of condition ``info`` is trained and scored on;
    its classes must be the model's."""
    if info is None:
        return
    got = for_data(info.kind, dataset)
    if got != info:
        raise ConditionError(
            f"model.condition: the model has {info.classes} classes but {dataset.name} "
            f"{dataset.split} has {got.classes} ({', '.join(got.names[:5])}...)"
        )


def from_checkpoint(hparams: dict, recipe: dict | None, data: dict | None) -> ConditionInfo | None:
    """The condition a checkpoint's model was trained with, from the recorded recipe and
    data description; None for an unconditional model."""
    channels = int(hparams.get("cond_channels", 0) or 0)
    if not channels:
        return None
    model = (recipe or {}).get("model") or {}
    kind = model.get("condition") or "class"
    names = (data or {}).get("classes") or [str(k) for k in range(channels)]
    return ConditionInfo(kind, tuple(str(n) for n in names))


def parse_class(text: str | int, info: ConditionInfo | None, *, key: str = "--class") -> int:
    """A class given by number or by name (``7``, ``Trouser``) -> its label; a value out of
    range, or any on an unconditional model, is a one-line ``ConditionError``."""
    if info is None or info.kind != "class":
        raise ConditionError(f"{key}: this model is not class-conditional; leave {key} out")
    text = str(text).strip()
    if text in info.names:
        return info.names.index(text)
    try:
        label = int(text)
    except ValueError:
        shown = ", ".join(info.names[:12]) + (", ..." if info.classes > 12 else "")
        raise ConditionError(
            f"{key}: {text!r} is no class of this model (0..{info.classes - 1} or a name: {shown})"
        ) from None
    if not 0 <= label < info.classes:
        raise ConditionError(
            f"{key}: class {label} is out of range: this model has classes 0..{info.classes - 1}"
        )
    return label

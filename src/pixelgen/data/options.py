"""Checking the data options a recipe passes to `load_split` (`data.valid_size`,
`data.binarize`, ...). Each data set declares the options it understands; a value of
the wrong type or out of range is a one-line `ConfigError` naming the key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Option:
    """One option a data set accepts: its default and a checker that normalizes a value."""

    name: str
    default: Any
    check: Check
    help: str


def _is_int(v: Any) -> bool:
    # bool is an int subclass, but `valid_size: true` in a recipe is a mistake.
    return isinstance(v, int) and not isinstance(v, bool)


def non_negative_int(key: str) -> Check:
    def check(v: Any) -> int:
        if not _is_int(v) or v < 0:
            raise ConfigError(f"data.{key} must be a non-negative integer, got {v!r}")
        return int(v)

    return check


def any_int(key: str) -> Check:
    def check(v: Any) -> int:
        if not _is_int(v):
            raise ConfigError(f"data.{key} must be an integer, got {v!r}")
        return int(v)

    return check


def choice(key: str, choices: tuple[str, ...]) -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v.lower() not in choices:
            raise ConfigError(f"data.{key} must be one of {', '.join(choices)}; got {v!r}")
        return v.lower()

    return check


def image_size(key: str) -> Check:
    """An int n (n x n) or a pair [H, W]; normalized to a tuple (H, W)."""

    def check(v: Any) -> tuple[int, int]:
        if _is_int(v):
            v = (v, v)
        if (
            isinstance(v, (list, tuple))
            and len(v) == 2
            and all(_is_int(x) and 0 < x <= 4096 for x in v)
        ):
            return (int(v[0]), int(v[1]))
        raise ConfigError(
            f"data.{key} must be a positive integer or a pair [height, width], got {v!r}"
        )

    return check


def channel_count(key: str) -> Check:
    def check(v: Any) -> int:
        if not _is_int(v) or v not in (1, 3):
            raise ConfigError(f"data.{key} must be 1 (grayscale) or 3 (RGB), got {v!r}")
        return int(v)

    return check

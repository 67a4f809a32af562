"""The vocabulary pixelgen's schemas are declared in, and their errors in one line.

The recipe schema (``pixelgen.config``) and the model hyperparameters (``pixelgen.registry``)
are pydantic declarations built from the types below: values are taken as YAML gives them,
not coerced (``true`` is not 1, ``'3'`` is no number, ``1e5`` is a count), and ``Int(ge=1)``
or ``Float(gt=0)`` declare a range once, for the check and for the JSON Schema alike.
``validated`` runs a declaration and turns the first problem into a one-line ``ConfigError``
naming the source and the full key path (``recipes/x.yaml: train.lr: must be > 0, got -1.0``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic
from pydantic import AfterValidator, BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

from .errors import ConfigError
from .text import did_you_mean

# ---------------------------------------------------------------------------- value types


def problem(message: str, key: str | None = None, *also: str) -> PydanticCustomError:
    """An error in our words already, for a validator to raise; a rule across keys names
    its key (and the ``also`` keys whose ``--set`` may be the source)."""
    return PydanticCustomError("pixelgen", "{message}", dict(message=message, key=key, also=also))


def _integral(value: Any) -> Any:  # YAML reads 1e5 as a float; as a count it is 100000
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _as_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise problem(f"must be odd, got {value}")
    return value


def _exact(value: Any) -> Any:
    if isinstance(value, (bool, float)):
        raise PydanticCustomError("exact", "not an exact choice")
    return value


def Int(*, odd: bool = False, **rules: Any) -> Any:
    """An integer with ``Field`` rules (``ge=1``); ``odd`` for kernel sizes."""
    if odd:
        rules["json_schema_extra"] = {"not": {"multipleOf": 2}}
    checks = (AfterValidator(_odd),) if odd else ()
    return Annotated[(int, Strict(), Field(**rules), BeforeValidator(_integral), *checks)]


def Float(**rules: Any) -> Any:
    """A finite number (an integer is one) with ``Field`` rules (``gt=0``)."""
    return Annotated[
        float, Strict(), Field(allow_inf_nan=False, **rules), BeforeValidator(_as_float)
    ]


Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Exact = BeforeValidator(_exact)  # for a Literal of integers, which alone takes true and 1.0


# ---------------------------------------------------------------------------- messages


def show(value: Any) -> str:
    """A value as the user wrote it in YAML."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(list(value) if isinstance(value, tuple) else value)


def describe(tp: Any) -> str:
    """What a type hint takes, in words (``an integer or null``)."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        parts = [describe(a) for a in args]
        return ", ".join(parts[:-1]) + " or " + parts[-1]
    if origin is Literal:
        return "one of " + ", ".join(show(c) for c in args)
    if origin is tuple:
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a list of {len(args)} {plural.get(args[0], describe(args[0]))}"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    return names.get(tp, "null" if tp is type(None) else getattr(tp, "__name__", str(tp)))


def choices(tp: Any) -> list[str]:
    """String choices of every Literal inside ``tp`` (for did-you-mean)."""
    if get_origin(tp) is Literal:
        return [c for c in get_args(tp) if isinstance(c, str)]
    union = get_origin(tp) in (Union, types.UnionType)
    return [c for a in get_args(tp) for c in choices(a)] if union else []


class Where:
    """Where values came from: ``--set`` items (``origins``, by key path) win over the
    source in messages; an empty source names none."""

    def __init__(self, source: str, origins: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.origins = dict(origins or {})

    def fail(self, path: str, message: str, *also: str) -> typing.NoReturn:
        where = next((self.origins[p] for p in (path, *also) if p in self.origins), self.source)
        text = f"{path}: {message}" if path else message
        raise ConfigError(f"{where}: {text}" if where else text)


# pydantic's errors for a value of the right type but out of range, in our words.
_RANGES = {
    "greater_than": "must be > {gt:g}",
    "greater_than_equal": "must be >= {ge:g}",
    "less_than_equal": "must be <= {le:g}",
    "finite_number": "must be a finite number",
}
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument", "invalid_key")


def validated(
    where: Where,
    cls: Any,
    raw: Mapping[str, Any],
    section: str = "",
    *,
    unknown: Callable[[Any], str] | None = None,
    missing: str = "",
) -> Any:
    """``cls`` (a pydantic model or dataclass) validated from ``raw``, the keys of one
    ``section`` (``""``: the top level). The first problem in the order of ``raw`` is a
    one-line ``ConfigError``; ``unknown(key)`` words an unknown key, ``missing`` what a
    missing one lacks (else its choices)."""
    try:
        return cls.__pydantic_validator__.validate_python(raw)
    except pydantic.ValidationError as err:
        where.fail(*_first_problem(err, cls, raw, section, unknown, missing))


def validated_part(
    cls: Any,
    raw: Mapping[str, Any],
    section: str,
    *,
    unknown: Callable[[Any], str] | None = None,
    missing: str = "",
) -> Any:
    """``validated`` for a value that is itself a section of keys, checked inside another
    declaration's validator (a composite model's part, ``model.small``): its first
    problem is raised as a ``problem`` whose key path starts at ``section``, so the outer
    ``validated`` names the full path (``model.small.hidden``)."""
    try:
        return cls.__pydantic_validator__.validate_python(raw)
    except pydantic.ValidationError as err:
        path, message, *also = _first_problem(err, cls, raw, section, unknown, missing)
        raise problem(message, path, *also) from None


def _first_problem(
    err: pydantic.ValidationError,
    cls: Any,
    raw: Mapping[str, Any],
    section: str,
    unknown: Callable[[Any], str] | None,
    missing: str,
) -> tuple[str, ...]:
    """``(key path, message, *also)`` of the first problem in the order of ``raw``."""
    at = {k: i for i, k in enumerate(raw)}
    errors = sorted(
        err.errors(), key=lambda e: at.get(e["loc"][0], len(at)) if e["loc"] else len(at)
    )
    first, prefix = errors[0], f"{section}." if section else ""
    if first["type"] == "pixelgen":  # in our words already
        c = first["ctx"]
        return (prefix + (c["key"] or first["loc"][0]), c["message"], *c["also"])
    key, nested, kind = first["loc"][0], len(first["loc"]) > 1, first["type"]
    path, tp = prefix + str(key), typing.get_type_hints(cls).get(key)
    if kind in _UNKNOWN and not nested:
        return path, unknown(key) if unknown else "unknown key"
    if kind == "missing" and not nested:
        hint = f" (one of {', '.join(choices(tp))})" if choices(tp) else ""
        return path, f"missing{missing or hint}"
    value = raw[key]
    for e in (e for e in errors if e["loc"][0] == key):
        if e["type"] in _RANGES:
            shown = value if isinstance(value, list) else e["input"]
            return path, f"{_RANGES[e['type']].format(**e.get('ctx', {}))}, got {show(shown)}"
        if e["type"] == "string_pattern_mismatch":
            expected = cls.__pydantic_fields__[key].description
            return path, f"expected {expected}, got {show(value)}"
    hint = did_you_mean(value, choices(tp)) if isinstance(value, str) else ""
    return path, f"expected {describe(tp)}, got {show(value)}{hint}"

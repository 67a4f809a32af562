"""A tiny model registry: ``@register_model`` entry points, ``create_model``,
``list_models`` and ``model_hparams`` (the keyword-only hyperparameters of a model, with
their defaults), and ``hparams_schema``, the check of their values that recipes and
``create_model`` share.

A *composite* model (its class sets ``composite = True``, e.g. the Multi-Scale PixelRNN of
§3.5) is built from other registered models: a hyperparameter annotated ``ModelSpec`` is
one of them, ``{"name": ..., **its hyperparameters}``, checked against that model's own
declaration. ``list_models()`` names the single models, for which the raster-order
contract of ``models/base.py`` holds; ``list_models(composite=True)`` adds the composites.

As in timm, an entry point is three lines that forward ``**kwargs`` to the model class,
whose ``__init__`` chain is the one declaration of every hyperparameter: its name, type and
default (an entry point with its own keyword-only parameters declares them itself). The
registry imports no model: each model module registers itself when the package's
``__init__`` imports ``pixelgen.models``."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import pydantic
import torch.nn as nn
from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

from . import validation
from .errors import UnknownModelError
from .text import did_you_mean

_MODELS: dict[str, Callable[..., nn.Module]] = {}


class ModelSpec(dict):
    """The annotation of a hyperparameter that is a model of its own, a composite's part:
    ``{"name": "row_lstm", "hidden": 16, ...}``. Its value is checked against that
    model's declaration (``hparams_schema``) and resolved with every default filled in.
    The composite sets the part's ``PART_FIXED`` hyperparameters itself."""


#: What a composite decides for its parts: the data format, and whether they are conditional.
PART_FIXED = ("channels", "levels", "cond_channels")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an entry point under its function name. Its hyperparameters (its own, or
    its model class's) must be keyword-only."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _declaration(fn)  # refuses positional hyperparameters now, not at the first recipe
    _MODELS[fn.__name__] = fn
    return fn


def list_models(*, composite: bool = False) -> list[str]:
    """Registered model names, sorted: the single models, with ``composite`` also those
    built from other models (see the module docstring)."""
    return sorted(n for n in _MODELS if composite or not is_composite(n))


def is_composite(name: str) -> bool:
    """Whether model ``name`` is built from other registered models (``ModelSpec`` parts)."""
    return bool(getattr(_hints(_builder(name)).get("return"), "composite", False))


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _MODELS[name]
    except KeyError:
        hint = did_you_mean(name, _MODELS)
        raise UnknownModelError(
            f"unknown model {name!r}{hint}; valid names: {', '.join(sorted(_MODELS))}"
        ) from None


def model_signature(name: str) -> dict[str, tuple[Any, Any]]:
    """``{hyperparameter: (type, default)}`` of a model, in declaration order (the shared
    ones first); a required one has the default ``inspect.Parameter.empty``."""
    return _declaration(_builder(name))


def model_hparams(name: str) -> dict[str, Any]:
    """``{hyperparameter: default}`` for a model (required ones: ``inspect.Parameter.empty``)."""
    return {k: default for k, (_, default) in model_signature(name).items()}


def model_doc(name: str) -> str:
    """First line of the model's docstring (the entry point's, else its class's)."""
    fn = _builder(name)
    doc = inspect.getdoc(fn) or inspect.getdoc(_hints(fn).get("return")) or ""
    return doc.splitlines()[0] if doc else ""


# Ranges of hyperparameters, by name, for every model: ``hparams_schema`` adds them to the
# builder's declaration, recipes and ``create_model`` are checked against them, and the model
# classes trust them. Any "*kernel" is a positive odd size (the masks are centred on the
# current pixel).
_RULES: dict[str, dict[str, Any]] = {
    "channels": {"ge": 1}, "levels": {"ge": 2}, "hidden": {"ge": 1}, "layers": {"ge": 1},
    "out_hidden": {"ge": 1}, "cond_channels": {"ge": 0},
    "factor": {"ge": 2}, "condition_maps": {"ge": 1}, "upsample_hidden": {"ge": 1},
}  # fmt: skip
_KERNEL_RULES = {"ge": 1, "odd": True}


def hparams_schema(name: str, exclude: tuple[str, ...] = ()) -> type[pydantic.BaseModel]:
    """A model's hyperparameters (less ``exclude``) as a pydantic model: the names, types
    and defaults of its declaration (``model_signature``), not coerced, with the ranges of
    ``_RULES``."""
    specs = {}
    for key, (tp, default) in model_signature(name).items():
        if tp is Any and default is not inspect.Parameter.empty and default is not None:
            tp = type(default)  # no usable annotation: the default's type
        rules = _KERNEL_RULES if key.endswith("kernel") else _RULES.get(key, {})
        if key not in exclude:
            required = default is inspect.Parameter.empty
            specs[key] = (_schema_type(tp, rules), ... if required else default)
    return pydantic.create_model(name, __config__={"extra": "forbid"}, **specs)


def _schema_type(tp: Any, rules: dict[str, Any]) -> Any:
    """A type hint as a schema type: not coerced, ``rules`` on its numbers."""
    if tp is ModelSpec:
        return _part_type()
    if typing.get_origin(tp) in (typing.Union, types.UnionType, tuple):
        args = tuple(_schema_type(a, rules) for a in typing.get_args(tp))
        return tuple[args] if typing.get_origin(tp) is tuple else typing.Union[args]  # noqa: UP007
    if tp is int or tp is float:
        return (validation.Int if tp is int else validation.Float)(**rules)
    return {bool: validation.Bool, str: validation.Str}.get(tp, tp)


def _part_type() -> Any:
    """The schema type of a ``ModelSpec``: a mapping with a single model's ``name`` and
    its hyperparameters (less ``PART_FIXED``), resolved to every value."""
    variants = []
    for name in list_models():
        hp = hparams_schema(name, exclude=PART_FIXED).model_json_schema()
        props = {"name": {"const": name}, **hp["properties"]}
        required = ["name", *hp.get("required", [])]
        variants.append({"properties": props, "required": required, "additionalProperties": False})
    shape = {"type": "object", "description": "a single model: name and hyperparameters"}
    shape["oneOf"] = variants
    return typing.Annotated[dict, BeforeValidator(_check_part), WithJsonSchema(shape)]


def _check_part(value: Any, info: ValidationInfo) -> dict[str, Any]:
    key, names = info.field_name, list_models()
    if not isinstance(value, dict):
        shown = validation.show(value)
        msg = f"expected a mapping: a model's name and hyperparameters, got {shown}"
        raise validation.problem(msg, key)
    name = value.get("name")
    if name is None:
        raise validation.problem(f"missing (one of {', '.join(names)})", f"{key}.name")
    if name not in names:
        hint = did_you_mean(name, names) if isinstance(name, str) else ""
        what = "a composite model cannot be a part" if name in _MODELS else "unknown model"
        msg = f"{what} {validation.show(name)}{hint}; valid names: {', '.join(names)}"
        raise validation.problem(msg, f"{key}.name")
    schema = hparams_schema(name, exclude=PART_FIXED)

    def unknown(k: Any) -> str:
        if k in PART_FIXED:
            return "set by the composite model, not by its part"
        shown = lambda f: repr(f"model.{key}.{f}")  # noqa: E731
        return f"unknown key for model {name!r}{did_you_mean(k, schema.model_fields, show=shown)}"

    given = {k: v for k, v in value.items() if k != "name"}
    missing = f" (model {name!r} has no default for it)"
    hparams = validation.validated_part(schema, given, key, unknown=unknown, missing=missing)
    return {"name": name, **dict(hparams)}


def create_model(name: str, **hparams: Any) -> nn.Module:
    """Build a registered model. Its hyperparameters are checked here, the edge for Python
    callers, as a recipe's ``model:`` section is (``hparams_schema``: names, types and
    ranges); a problem is a one-line ``ConfigError``. The model classes trust the values."""
    fn = _builder(name)
    schema = hparams_schema(name)

    def unknown(key: Any) -> str:
        hint = did_you_mean(key, schema.model_fields, show=lambda k: repr(f"model.{k}"))
        return f"unknown key for model {name!r}{hint}"

    missing = f" (model {name!r} has no default for it)"
    valid = validation.validated(
        validation.Where(""), schema, hparams, "model", unknown=unknown, missing=missing
    )
    hparams = dict(valid)  # every one, defaults filled in
    model = fn(**hparams)
    model.model_name = name
    model.hparams = hparams
    return model


def _declaration(fn: Callable[..., nn.Module]) -> dict[str, tuple[Any, Any]]:
    """The entry point's own keyword-only parameters, or, where it forwards ``**kwargs``,
    those of the ``__init__`` chain of the class it returns (base classes first, a
    subclass's default winning), up to the first ``__init__`` without ``**kwargs``."""
    if not _forwards(fn):
        return _keyword_only(fn, fn.__name__)
    cls = _hints(fn).get("return")
    if not isinstance(cls, type):
        raise TypeError(f"{fn.__name__}: an entry point forwarding **kwargs must name its class")
    chain = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            chain.append(init)
            if not _forwards(init):
                break
    out: dict[str, tuple[Any, Any]] = {}
    for init in reversed(chain):
        out.update(_keyword_only(init, f"{cls.__name__}.__init__"))
    return out


def _keyword_only(fn: Callable, where: str) -> dict[str, tuple[Any, Any]]:
    hints = _hints(fn)
    out = {}
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or (i == 0 and p.name == "self"):
            continue
        if p.kind is not p.KEYWORD_ONLY:
            raise TypeError(f"{where}: hyperparameter {p.name!r} must be keyword-only")
        out[p.name] = (hints.get(p.name, Any), p.default)
    return out


def _forwards(fn: Callable) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that cannot be evaluated: no types, only defaults
        return {}

"""A tiny model registry: ``@register_model`` builder functions, ``create_model``,
``list_models`` and ``model_hparams`` (the keyword-only hyperparameters each builder
takes, with their defaults, used to validate recipes).

As in timm, the registry imports no model: each model module registers itself when the
package's ``__init__`` imports ``pixelgen.models``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from .errors import ConfigError, UnknownModelError
from .text import did_you_mean

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name. Its hyperparameters must be keyword-only."""
    sig = inspect.signature(fn)
    for p in sig.parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{fn.__name__}: hyperparameter {p.name!r} must be keyword-only")
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _MODELS[name]
    except KeyError:
        hint = did_you_mean(name, _MODELS)
        raise UnknownModelError(
            f"unknown model {name!r}{hint}; valid names: {', '.join(sorted(_MODELS))}"
        ) from None


def model_hparams(name: str) -> dict[str, Any]:
    """``{hyperparameter: default}`` for a model (required ones: ``inspect.Parameter.empty``)."""
    sig = inspect.signature(_builder(name))
    return {p.name: p.default for p in sig.parameters.values()}


def model_doc(name: str) -> str:
    """First line of the builder's docstring."""
    return (inspect.getdoc(_builder(name)) or "").splitlines()[0]


def create_model(name: str, **hparams: Any) -> nn.Module:
    """Build a registered model. Unknown hyperparameters raise ``ConfigError`` naming them."""
    fn = _builder(name)
    known = model_hparams(name)
    unknown = [k for k in hparams if k not in known]
    if unknown:
        k = unknown[0]
        hint = did_you_mean(k, known)
        raise ConfigError(f"model {name!r} has no hyperparameter {k!r}{hint}")
    missing = [k for k, v in known.items() if v is inspect.Parameter.empty and k not in hparams]
    if missing:
        raise ConfigError(f"model {name!r} needs hyperparameter {missing[0]!r}")
    model = fn(**hparams)
    model.model_name = name
    model.hparams = {k: hparams.get(k, v) for k, v in known.items()}
    return model

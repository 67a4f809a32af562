"""Recipes: the YAML schema, its validation, and the shipped recipes.

A recipe has six top-level keys: ``description``, ``model``, ``data``, ``train``, ``eval``
and ``sample``. Config flows one way: YAML (plus ``--set`` overrides) -> the frozen
dataclasses below -> keyword-only constructors. The dataclasses *are* the schema: each
field's type hint says which values it accepts and its metadata the allowed range, so there
is no second list of keys to keep in sync. The ``model`` section is checked against the
registered builder's own keyword-only parameters and type hints (``pixelgen.registry``).

Every problem is a one-line ``ConfigError`` naming the source, the full key path and what
is wrong, e.g. ``recipes/x.yaml: train.lerning_rate: unknown key (did you mean 'train.lr'?)``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from .devices import PATTERN as DEVICE_PATTERN
from .errors import ConfigError, UnknownModelError
from .text import did_you_mean

RECIPES_DIR = Path(__file__).parent / "recipes"

DataSetName = Literal[
    "mnist", "binarized_mnist", "fashion_mnist", "cifar10", "imagenet32", "imagenet64", "folder"
]
DATA_SETS: tuple[str, ...] = get_args(DataSetName)

# The data set fixes these (1 vs 3 colour channels, 2 vs 256 levels), so a recipe can't.
_FROM_DATA = ("channels", "levels")


def _opt(default: Any, **rules: Any) -> Any:
    """A dataclass field with a default and range rules (min, gt, max, odd, pattern+hint)."""
    return field(default=default, metadata=rules)


# ---------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class ModelConfig:
    """``model:``: a registered model name and its resolved hyperparameters (defaults filled
    in, in the builder's order; ``channels``/``levels`` excluded, they come from the data)."""

    name: str
    hparams: tuple[tuple[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``registry.create_model(name, channels=..., levels=..., **kw)``."""
        return dict(self.hparams)


@dataclass(frozen=True)
class DataConfig:
    """``data:``: which data set and how to read it (``pixelgen.data.load_split``)."""

    name: DataSetName
    root: str | None = None
    valid_size: int | None = _opt(None, min=0)
    binarize: Literal["static", "dynamic"] | None = None
    binarize_seed: int | None = _opt(None, min=0)
    image_size: int | tuple[int, int] | None = _opt(None, min=1)
    channels: Literal[1, 3] | None = None
    format: Literal["auto", "png", "npz"] | None = None

    def options(self) -> dict[str, Any]:
        """The options that are set, for ``load_split(name, split, root=root, **options)``."""
        skip = ("name", "root")
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class TrainConfig:
    """``train:``: optimisation. Exactly one of ``max_steps`` and ``epochs`` is set."""

    max_steps: int | None = _opt(None, min=1)
    epochs: int | None = _opt(None, min=1)
    batch_size: int = _opt(16, min=1)
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    lr: float = _opt(1e-3, gt=0)
    weight_decay: float = _opt(0.0, min=0)
    schedule: Literal["constant", "cosine", "exponential"] = "constant"
    warmup_steps: int = _opt(0, min=0)
    lr_decay: float = _opt(0.9999, gt=0, max=1)  # per-step factor, used by "exponential"
    grad_clip: float | None = _opt(1.0, gt=0)  # None = no clipping
    seed: int = _opt(0, min=0)
    checkpoint_every: int = _opt(500, min=1)
    eval_every: int = _opt(500, min=1)
    log_every: int = _opt(50, min=1)
    eval_max_images: int | None = _opt(None, min=1)  # None = the whole validation split
    device: str = _opt("auto", pattern=DEVICE_PATTERN, hint="'auto', 'cpu', 'cuda' or 'cuda:N'")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False
    accumulate: int = _opt(1, min=1)
    num_workers: int = _opt(0, min=0)


@dataclass(frozen=True)
class EvalConfig:
    """``eval:``: which split ``pixelgen eval`` scores, and how much of it."""

    split: Literal["test", "valid", "train"] = "test"
    batch_size: int = _opt(64, min=1)
    max_images: int | None = _opt(None, min=1)


@dataclass(frozen=True)
class SampleConfig:
    """``sample:``: defaults for ``pixelgen sample``."""

    n: int = _opt(16, min=1)
    temperature: float = _opt(1.0, gt=0)
    method: Literal["fast", "naive"] = "fast"
    nrow: int | None = _opt(None, min=1)
    seed: int = _opt(0, min=0)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. ``source`` (the file, shipped name or ``<dict>``) is for messages
    only and does not take part in equality."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig = field(default_factory=EvalConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    description: str = ""
    source: str = field(default="<dict>", compare=False)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "sample": SampleConfig,
}
_TOP_KEYS = ("description", "model", "data", "train", "eval", "sample")

# Ranges for model hyperparameters, by name; any "*kernel" must be a positive odd size
# because the masks are centred on the current pixel.
_MODEL_RULES: dict[str, dict[str, Any]] = {
    "hidden": {"min": 1},
    "layers": {"min": 1},
    "out_hidden": {"min": 1},
}
_KERNEL_RULES = {"min": 1, "odd": True}

# Names people type for our keys; only used to make the did-you-mean hint land.
_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "steps": "max_steps",
    "num_steps": "max_steps",
    "n_epochs": "epochs",
    "num_epochs": "epochs",
    "bs": "batch_size",
    "clip": "grad_clip",
    "gradient_clip": "grad_clip",
    "clip_grad_norm": "grad_clip",
    "wd": "weight_decay",
    "warmup": "warmup_steps",
    "lr_schedule": "schedule",
    "gamma": "lr_decay",
    "grad_accumulation": "accumulate",
    "gradient_accumulation_steps": "accumulate",
    "amp": "precision",
    "dtype": "precision",
    "num_samples": "n",
    "hidden_dim": "hidden",
    "hidden_size": "hidden",
    "h": "hidden",
    "num_layers": "layers",
    "n_layers": "layers",
    "depth": "layers",
    "dataset": "name",
}


# ---------------------------------------------------------------------------- values


class _Invalid(Exception):
    """A value does not fit its field; the caller adds source and key path."""


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in get_args(tp)]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
    if origin is Literal:
        return "one of " + ", ".join(_show(c) for c in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        return f"a list of {len(args)} {_plural(args[0])}"
    names = {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        type(None): "null",
    }
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings"}.get(tp, _describe(tp))


def _choices(tp: Any) -> list[str]:
    """String choices of every Literal inside ``tp`` (for did-you-mean)."""
    if get_origin(tp) is Literal:
        return [c for c in get_args(tp) if isinstance(c, str)]
    if get_origin(tp) in (Union, types.UnionType):
        return [c for a in get_args(tp) for c in _choices(a)]
    return []


def _mismatch(tp: Any, value: Any) -> _Invalid:
    hint = ""
    if isinstance(value, str):
        hint = did_you_mean(value, _choices(tp))
    return _Invalid(f"expected {_describe(tp)}, got {_show(value)}{hint}")


def _convert(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (int, float, bool, str, Literal, fixed tuple, unions thereof)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            try:
                return _convert(value, option)
            except _Invalid:
                pass
        raise _mismatch(tp, value)
    if tp is type(None):
        if value is None:
            return None
    elif origin is Literal:
        for choice in get_args(tp):
            # Exact type match: True must not pass as 1.
            if type(value) is type(choice) and value == choice:
                return choice
    elif origin is tuple:
        args = get_args(tp)
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_convert(v, a) for v, a in zip(value, args, strict=True))
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # 1e5 steps reads naturally in YAML and arrives as a float.
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Invalid(f"must be a finite number, got {_show(value)}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        return value  # a type we don't know how to check: let the consumer decide
    raise _mismatch(tp, value)


def _check_rules(value: Any, rules: Mapping[str, Any]) -> None:
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if "gt" in rules and not v > rules["gt"]:
            raise _Invalid(f"must be > {rules['gt']}, got {_show(value)}")
        if "min" in rules and v < rules["min"]:
            raise _Invalid(f"must be >= {rules['min']}, got {_show(value)}")
        if "max" in rules and v > rules["max"]:
            raise _Invalid(f"must be <= {rules['max']}, got {_show(value)}")
        if rules.get("odd") and v % 2 == 0:
            raise _Invalid(f"must be odd, got {_show(value)}")
    if "pattern" in rules and isinstance(value, str):
        if not re.fullmatch(rules["pattern"], value):
            raise _Invalid(f"expected {rules['hint']}, got {_show(value)}")


def _field_specs(cls: type) -> dict[str, tuple[Any, Mapping[str, Any]]]:
    """``{key: (type hint, rules)}`` of a section dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata) for f in fields(cls)}


_SPECS = {section: _field_specs(cls) for section, cls in _SECTIONS.items()}


# ---------------------------------------------------------------------------- errors


class _Ctx:
    """Where values came from: ``--set`` items win over the recipe's source in messages."""

    def __init__(self, source: str, origins: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.origins = dict(origins or {})

    def fail(self, path: str, message: str, *also: str) -> typing.NoReturn:
        where = next((self.origins[p] for p in (path, *also) if p in self.origins), self.source)
        raise ConfigError(f"{where}: {path}: {message}" if path else f"{where}: {message}")


def _did_you_mean(key: Any, section: str | None, local: Sequence[str]) -> str:
    """The hint for an unknown ``key`` in ``section`` (None = top level), or ''."""
    if not isinstance(key, str):
        return ""
    prefix = f"{section}." if section else ""
    target = _ALIASES.get(key) if _ALIASES.get(key) in local else None
    if target is None:
        pool = {k: k for k in local}
        pool.update({a: t for a, t in _ALIASES.items() if t in local})
        close = difflib.get_close_matches(key, list(pool), n=1)
        target = pool[close[0]] if close else None
    if target is not None:
        return f" (did you mean {prefix + target!r}?)"
    # A key put in the wrong section (e.g. `lr` at the top level or `temperature` in train).
    for other, specs in _SPECS.items():
        if other != section and key in specs:
            return f" (did you mean {other + '.' + key!r}?)"
    return ""


def _unknown(ctx: _Ctx, section: str | None, key: Any, local: Sequence[str]) -> typing.NoReturn:
    path = f"{section}.{key}" if section else str(key)
    ctx.fail(path, f"unknown key{_did_you_mean(key, section, local)}")


# ---------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``3e-4`` as a float (YAML 1.2, not 1.1) and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml_error(where: str, err: yaml.YAMLError) -> ConfigError:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return ConfigError(f"{where}: {at}YAML syntax error: {' '.join(str(problem).split())}")


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as err:
        raise _yaml_error(where, err) from None


def _read_yaml(path: Path, where: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a UTF-8 text file") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot read recipe: {err.strerror or err}") from None
    return _parse_yaml(text, where)


# ---------------------------------------------------------------------------- overrides


def _split_override(item: str, where: str) -> tuple[str, str, Any]:
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"{where}: expected KEY=VALUE, e.g. train.lr=3e-4")
    key, text = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.load(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError as err:
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{where}: {key}: cannot read the value as YAML ({problem})") from None
    if isinstance(value, Mapping):
        raise ConfigError(f"{where}: {key}: expected a single value, got a mapping")
    parts = key.split(".")
    if len(parts) == 1:
        if key in _SECTIONS or key == "model":
            raise ConfigError(
                f"{where}: {key}: is a section; set one of its keys, e.g. {key}.KEY=VALUE"
            )
        if key != "description":
            raise ConfigError(f"{where}: {key}: unknown key{_did_you_mean(key, None, _TOP_KEYS)}")
        return "", key, value
    if len(parts) != 2 or parts[0] not in _TOP_KEYS or parts[0] == "description":
        rest = parts[1:]
        hint = did_you_mean(
            parts[0], ["model", *_SECTIONS], show=lambda s: repr(".".join([s, *rest]))
        )
        raise ConfigError(f"{where}: {key}: unknown key{hint}")
    return parts[0], parts[1], value


def _command_line_length_wins(merged: dict[str, Any], origins: Mapping[str, str]) -> None:
    """A run length given with ``--set`` (``train.max_steps`` or ``train.epochs``) replaces
    the recipe's other one, as a command-line value is expected to; both given with
    ``--set`` stay an error."""
    train = merged.get("train")
    if not isinstance(train, dict):
        return
    lengths = ("max_steps", "epochs")
    given = [k for k in lengths if f"train.{k}" in origins and train.get(k) is not None]
    if len(given) == 1:
        other = lengths[1 - lengths.index(given[0])]
        if f"train.{other}" not in origins:
            train[other] = None


def _merge_overrides(
    d: Mapping[str, Any], overrides: Sequence[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A deep copy of ``d`` with the overrides applied, and ``{key path: --set item}``."""
    if isinstance(overrides, str):
        overrides = [overrides]  # one --set given as a bare string: not a list of characters
    merged: Any = copy.deepcopy(dict(d)) if isinstance(d, Mapping) else d
    origins: dict[str, str] = {}
    if not overrides:
        return merged, origins
    if not isinstance(merged, dict):
        raise ConfigError("--set: the recipe is not a mapping of sections")
    parsed = [(f"--set {item!r}", *_split_override(item, f"--set {item!r}")) for item in overrides]
    # Only merged here: the values are validated once, with the rest of the recipe, and
    # ``origins`` makes their errors name the --set item.
    for where, section, key, value in parsed:
        ctx = _Ctx(where)
        if not section:
            merged[key] = value
            origins[key] = where
            continue
        target = merged.get(section)
        if target is None:
            target = merged[section] = {}
        elif not isinstance(target, dict):
            ctx.fail(section, f"expected a mapping of keys, got {_show(target)}")
        target[key] = value
        origins[f"{section}.{key}"] = where
    _command_line_length_wins(merged, origins)
    return merged, origins


def apply_overrides(d: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of recipe dict ``d`` with ``--set`` items applied (``"train.lr=3e-4"``, values
    parsed as YAML scalars). Keys and values are checked against the schema; keys the schema
    lacks are refused with a did-you-mean. ``d`` itself is not modified."""
    recipe_from_dict(d, overrides=overrides)  # the one validation, naming the --set items
    return _merge_overrides(d, overrides)[0]


# ---------------------------------------------------------------------------- sections


def _check_value(ctx: _Ctx, path: str, value: Any, tp: Any, rules: Mapping[str, Any]) -> Any:
    try:
        value = _convert(value, tp)
        _check_rules(value, rules)
    except _Invalid as err:
        ctx.fail(path, str(err))
    return value


def _as_mapping(ctx: _Ctx, merged: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    raw = merged.get(section)
    if raw is None:  # `eval:` with nothing under it means "all defaults"
        return {}
    if not isinstance(raw, Mapping):
        ctx.fail(section, f"expected a mapping of keys, got {_show(raw)}")
    return raw


def _build_section(ctx: _Ctx, section: str, raw: Mapping[str, Any]) -> Any:
    specs = _SPECS[section]
    values = {}
    for key, value in raw.items():
        if key not in specs:
            _unknown(ctx, section, key, list(specs))
        values[key] = _check_value(ctx, f"{section}.{key}", value, *specs[key])
    for f in fields(_SECTIONS[section]):
        if f.default is dataclasses.MISSING and f.name not in values:
            ctx.fail(f"{section}.{f.name}", f"missing{_required_hint(section, f.name)}")
    return _SECTIONS[section](**values)


def _required_hint(section: str, key: str) -> str:
    if (section, key) == ("data", "name"):
        return f" (one of {', '.join(DATA_SETS)})"
    return ""


def _model_specs(name: str) -> dict[str, tuple[Any, Any, dict[str, Any]]] | None:
    """``{hparam: (type, default, rules)}`` of a registered model, or None if unknown."""
    from . import registry  # lazy: listing recipes should not import torch

    try:
        signature = registry.model_signature(name)  # the model's one declaration
    except UnknownModelError:
        return None
    specs = {}
    for key, (tp, default) in signature.items():
        if tp is Any and default is not inspect.Parameter.empty and default is not None:
            tp = type(default)  # no usable annotation: the default's type
        rules = _KERNEL_RULES if key.endswith("kernel") else _MODEL_RULES.get(key, {})
        specs[key] = (tp, default, rules)
    return specs


def _check_model_value(ctx: _Ctx, name: str, specs: Mapping[str, Any], key: Any, value: Any) -> Any:
    if key in _FROM_DATA:
        ctx.fail(
            f"model.{key}",
            "set by the data set, not the recipe (for a folder of images use data.channels)",
        )
    if key not in specs:
        local = [k for k in specs if k not in _FROM_DATA] + ["name"]
        hint = _did_you_mean(key, "model", local)
        ctx.fail(f"model.{key}", f"unknown key for model {name!r}{hint}")
    tp, _, rules = specs[key]
    return _check_value(ctx, f"model.{key}", value, tp, rules)


def _build_model(ctx: _Ctx, raw: Mapping[str, Any]) -> ModelConfig:
    from . import registry

    if "name" not in raw:
        ctx.fail("model.name", f"missing (one of {', '.join(registry.list_models())})")
    name = raw["name"]
    if not isinstance(name, str):
        ctx.fail("model.name", f"expected a string, got {_show(name)}")
    specs = _model_specs(name)
    if specs is None:
        known = registry.list_models()
        hint = did_you_mean(name, known)
        where = ctx.origins.get("model.name", ctx.source)
        raise UnknownModelError(
            f"{where}: model.name: unknown model {name!r}{hint}; valid names: {', '.join(known)}"
        )
    given = {k: _check_model_value(ctx, name, specs, k, v) for k, v in raw.items() if k != "name"}
    hparams = []
    for key, (_, default, _) in specs.items():
        if key in _FROM_DATA:
            continue
        if key not in given and default is inspect.Parameter.empty:
            ctx.fail(f"model.{key}", f"missing (model {name!r} has no default for it)")
        hparams.append((key, given.get(key, default)))
    return ModelConfig(name=name, hparams=tuple(hparams))


def _check_description(ctx: _Ctx, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        ctx.fail("description", f"expected a string, got {_show(value)}")
    value = value.strip()
    if "\n" in value:
        ctx.fail("description", "must be one line (it is shown by `pixelgen recipes`)")
    return value


def _check_train(ctx: _Ctx, t: TrainConfig) -> None:
    if t.max_steps is None and t.epochs is None:
        ctx.fail("train.max_steps", "missing (set exactly one of train.max_steps and train.epochs)")
    if t.max_steps is not None and t.epochs is not None:
        ctx.fail(
            "train.epochs",
            "cannot be set together with train.max_steps (set exactly one; with --set, "
            "clear the other, e.g. train.max_steps=null)",
            "train.max_steps",
        )
    if t.batch_size % t.accumulate:
        ctx.fail(
            "train.accumulate",
            f"must divide train.batch_size ({t.batch_size}), got {t.accumulate}",
            "train.batch_size",
        )


# ---------------------------------------------------------------------------- public API


def section_fields(section: str) -> set[str]:
    """The keys a recipe section (``eval``, ``sample``, ...) has."""
    return {f.name for f in fields(_SECTIONS[section])}


def section_from_dict(section: str, raw: Any, *, source: str = "<dict>") -> Any:
    """One validated section of a recipe dict (``eval``, ``sample``, ...), its defaults
    filled in; a missing section (None) is all defaults."""
    ctx = _Ctx(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        ctx.fail(section, f"expected a mapping, got {_show(raw)}")
    return _build_section(ctx, section, raw)


def recipe_from_dict(
    d: Mapping[str, Any], *, source: str = "<dict>", overrides: Sequence[str] = ()
) -> Recipe:
    """Validate a recipe dict (e.g. parsed YAML), with ``--set`` overrides applied first."""
    merged, origins = _merge_overrides(d, overrides) if isinstance(d, Mapping) else (d, {})
    ctx = _Ctx(source, origins)
    if merged is None:
        ctx.fail("", "the recipe is empty; it needs at least model, data and train sections")
    if not isinstance(merged, Mapping):
        ctx.fail("", f"expected a mapping with keys {', '.join(_TOP_KEYS)}; got {_show(merged)}")
    for key in merged:
        if key not in _TOP_KEYS:
            _unknown(ctx, None, key, _TOP_KEYS)
    description = _check_description(ctx, merged.get("description"))
    model = _build_model(ctx, _as_mapping(ctx, merged, "model"))
    built = {s: _build_section(ctx, s, _as_mapping(ctx, merged, s)) for s in _SECTIONS}
    _check_train(ctx, built["train"])
    return Recipe(description=description, model=model, source=source, **built)


def recipe_to_dict(r: Recipe) -> dict[str, Any]:
    """A plain YAML/JSON-able dict of every resolved value; ``recipe_from_dict`` inverts it."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    out: dict[str, Any] = {"description": r.description}
    out["model"] = {"name": r.model.name, **{k: plain(v) for k, v in r.model.hparams}}
    for section in _SECTIONS:
        obj = getattr(r, section)
        out[section] = {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
    return out


def dump_recipe(r: Recipe) -> str:
    """YAML text of the resolved recipe (every default spelled out); loads back equal."""
    body = yaml.safe_dump(
        recipe_to_dict(r), sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True
    )
    return f"# pixelgen recipe, resolved from {r.source}\n{body}"


def _resolve(path_or_name: str) -> tuple[Path, str]:
    path = Path(path_or_name).expanduser()
    if path.is_file():
        return path, str(path_or_name)
    if path.is_dir():
        raise ConfigError(f"{path_or_name}: is a directory, not a recipe file")
    name = str(path_or_name).removesuffix(".yaml")
    shipped = RECIPES_DIR / f"{name}.yaml"
    if "/" not in name and shipped.is_file():
        return shipped, name
    names = [n for n, _ in shipped_recipes()]
    hint = did_you_mean(name, names)
    raise ConfigError(
        f"{path_or_name}: no such recipe file or shipped recipe{hint}; "
        "`pixelgen recipes` lists the shipped ones"
    )


def load_recipe(path_or_name: str, overrides: Sequence[str] = ()) -> Recipe:
    """Load a recipe from a YAML file, or a shipped one by name (``mnist_rowlstm`` or
    ``mnist_rowlstm.yaml``; an existing file of that name wins), then apply ``overrides``."""
    path, source = _resolve(path_or_name)
    data = _read_yaml(path, source)
    return recipe_from_dict(data, source=source, overrides=overrides)


def shipped_recipes() -> list[tuple[str, str]]:
    """``(name, description)`` of every shipped recipe, sorted by name."""
    out = []
    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        data = _read_yaml(path, f"{path.stem} (shipped recipe)")
        desc = data.get("description") if isinstance(data, Mapping) else None
        out.append((path.stem, desc.strip() if isinstance(desc, str) else ""))
    return out

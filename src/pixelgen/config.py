"""Recipes: the YAML schema, its validation, and the shipped recipes.

A recipe has six top-level keys: ``description``, ``model``, ``data``, ``train``, ``eval``
and ``sample``. Config flows one way: YAML (plus ``--set`` overrides) -> the frozen pydantic
dataclasses below -> keyword-only constructors. The dataclasses *are* the schema, declared
once: a field's type says which values it takes and its rules (``Int(ge=1)``, see
``pixelgen.validation``) their range; pydantic checks them, and ``recipe_schema()`` gives
editors the same declaration as JSON Schema. The ``model`` section is checked against the
registered builder's declaration (``registry.hparams_schema``), as ``create_model`` is.

Every problem is a one-line ``ConfigError`` naming the source, the full key path and what
is wrong, e.g. ``recipes/x.yaml: train.lerning_rate: unknown key (did you mean 'train.lr'?)``.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import field, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pydantic
import yaml
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass
from pydantic.json_schema import SkipJsonSchema

from .devices import PATTERN as DEVICE_PATTERN
from .errors import ConfigError, UnknownModelError
from .text import did_you_mean
from .validation import Bool, Exact, Float, Int, Str, Where, problem, show, validated

RECIPES_DIR = Path(__file__).parent / "recipes"

DataSetName = Literal[
    "mnist", "binarized_mnist", "fashion_mnist", "cifar10", "imagenet32", "imagenet64", "folder"
]
DATA_SETS: tuple[str, ...] = get_args(DataSetName)

# What a model may be conditioned on (§3.5, ``pixelgen.conditioning``): a new kind is a
# value here and a case there.
ConditionKind = Literal["class"]
CONDITION_KINDS: tuple[str, ...] = get_args(ConditionKind)

# The data set fixes these (1 vs 3 colour channels, 2 vs 256 levels), so a recipe can't;
# ``cond_channels`` follows from ``model.condition`` and the data (the number of classes).
_FROM_DATA = ("channels", "levels", "cond_channels")


# ---------------------------------------------------------------------------- the schema

# A section is frozen, and a key it does not declare is an error.
_section = dataclass(frozen=True, config={"extra": "forbid"})


@_section
class ModelConfig:
    """``model:``: a registered model name, what it is conditioned on (``condition``; None:
    unconditional) and its resolved hyperparameters (defaults filled in, in the builder's
    order; ``channels``/``levels``/``cond_channels`` excluded, they come from the data)."""

    name: Str
    hparams: tuple[tuple[Str, Any], ...] = ()
    condition: ConditionKind | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``registry.create_model(name, channels=..., levels=..., **kw)``."""
        return dict(self.hparams)


@_section
class DataConfig:
    """``data:``: which data set and how to read it (``pixelgen.data.load_split``)."""

    name: DataSetName
    root: Str | None = None
    valid_size: Int(ge=0) | None = None
    binarize: Literal["static", "dynamic", "standard"] | None = None
    binarize_seed: Int(ge=0) | None = None
    image_size: Int(ge=1) | tuple[Int(ge=1), Int(ge=1)] | None = None
    channels: Annotated[Literal[1, 3], Exact] | None = None
    format: Literal["auto", "png", "npz"] | None = None
    download: Bool | None = None  # fetch what is not found (``pixelgen download``)

    def options(self) -> dict[str, Any]:
        """The options that are set, for ``load_split(name, split, root=root, **options)``."""
        skip = ("name", "root")
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in skip and getattr(self, f.name) is not None
        }


@_section
class TrainConfig:
    """``train:``: optimisation. A recipe sets exactly one of ``max_steps`` and ``epochs``."""

    max_steps: Int(ge=1) | None = None
    epochs: Int(ge=1) | None = None
    batch_size: Int(ge=1) = 16
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    lr: Float(gt=0) = 1e-3
    weight_decay: Float(ge=0) = 0.0
    schedule: Literal["constant", "cosine", "exponential"] = "constant"
    warmup_steps: Int(ge=0) = 0
    lr_decay: Float(gt=0, le=1) = 0.9999  # per-step factor, used by "exponential"
    grad_clip: Float(gt=0) | None = 1.0  # None = no clipping
    # Decay of the weights' moving average, which validation, best.pt and every command
    # that loads the run use (train/average.py); None = the trained weights themselves.
    ema: Float(gt=0, lt=1) | None = None
    seed: Int(ge=0) = 0
    checkpoint_every: Int(ge=1) = 500
    eval_every: Int(ge=1) = 500
    log_every: Int(ge=1) = 50
    eval_max_images: Int(ge=1) | None = None  # None = the whole validation split
    device: Str = Field(
        "auto", pattern=f"^(?:{DEVICE_PATTERN})$", description="'auto', 'cpu', 'cuda' or 'cuda:N'"
    )
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: Bool = False
    tensorboard: Bool = False  # also write RUN/tb/ (the extra pixelgen[tensorboard])
    accumulate: Int(ge=1) = 1
    num_workers: Int(ge=0) = 0


@_section
class EvalConfig:
    """``eval:``: which split ``pixelgen eval`` scores, and how much of it."""

    split: Literal["test", "valid", "train"] = "test"
    batch_size: Int(ge=1) = 64
    max_images: Int(ge=1) | None = None


@_section
class SampleConfig:
    """``sample:``: defaults for ``pixelgen sample``."""

    n: Int(ge=1) = 16
    temperature: Float(gt=0) = 1.0
    method: Literal["fast", "naive"] = "fast"
    nrow: Int(ge=1) | None = None
    seed: Int(ge=0) = 0


def _one_line(text: str) -> str:
    if "\n" in text.strip():
        raise problem("must be one line (it is shown by `pixelgen recipes`)")
    return text.strip()


_Description = Annotated[
    Str, BeforeValidator(lambda v: "" if v is None else v), AfterValidator(_one_line)
]
# The description on its own, checked before the sections, as a reader meets it.
_HEAD = pydantic.create_model("head", description=(_Description, ""))


@_section
class Recipe:
    """A validated recipe. ``source`` (the file, shipped name or ``<dict>``) is for messages
    only and does not take part in equality."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig = field(default_factory=EvalConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    description: _Description = ""
    source: SkipJsonSchema[str] = field(default="<dict>", compare=False)
    # what the command line changed beyond the keys it named, for the user to read
    notes: SkipJsonSchema[tuple[str, ...]] = field(default=(), compare=False)

    @model_validator(mode="after")
    def _run_length(self) -> Recipe:
        t = self.train
        if t.max_steps is None and t.epochs is None:
            msg = "missing (set exactly one of train.max_steps and train.epochs)"
            raise problem(msg, "train.max_steps")
        if t.max_steps is not None and t.epochs is not None:
            msg = "cannot be set together with train.max_steps (set exactly one; with --set, "
            msg += "clear the other, e.g. train.max_steps=null)"
            raise problem(msg, "train.epochs", "train.max_steps")
        if t.batch_size % t.accumulate:
            msg = f"must divide train.batch_size ({t.batch_size}), got {t.accumulate}"
            raise problem(msg, "train.accumulate", "train.batch_size")
        return self


# ``model.condition`` checked on its own: the rest of ``model:`` is the builder's declaration.
_ConditionOnly = pydantic.create_model("model", condition=(ConditionKind | None, None))

_SECTIONS = dict(data=DataConfig, train=TrainConfig, eval=EvalConfig, sample=SampleConfig)
_TOP_KEYS = ("description", "model", "data", "train", "eval", "sample")

# Names people type for our keys; only used to make the did-you-mean hint land.
_ALIASES: dict[str, str] = {
    "learning_rate": "lr", "steps": "max_steps", "num_steps": "max_steps", "n_epochs": "epochs",
    "num_epochs": "epochs", "bs": "batch_size", "clip": "grad_clip", "gradient_clip": "grad_clip",
    "clip_grad_norm": "grad_clip", "wd": "weight_decay", "warmup": "warmup_steps",
    "lr_schedule": "schedule", "gamma": "lr_decay", "grad_accumulation": "accumulate",
    "gradient_accumulation_steps": "accumulate", "amp": "precision", "dtype": "precision",
    "num_samples": "n", "hidden_dim": "hidden", "hidden_size": "hidden", "h": "hidden",
    "num_layers": "layers", "n_layers": "layers", "depth": "layers", "dataset": "name",
}  # fmt: skip


# ---------------------------------------------------------------------------- errors


def _did_you_mean(key: Any, section: str | None, local: Sequence[str]) -> str:
    """The hint for an unknown ``key`` in ``section`` (None = top level), or ''."""
    if not isinstance(key, str):
        return ""
    pool = {k: k for k in local} | {a: t for a, t in _ALIASES.items() if t in local}
    close = [key] if key in pool else difflib.get_close_matches(key, list(pool), n=1)
    if close:
        return f" (did you mean {(f'{section}.' if section else '') + pool[close[0]]!r}?)"
    # A key put in the wrong section (e.g. `lr` at the top level or `temperature` in train).
    for other in _SECTIONS:
        if other != section and key in section_fields(other):
            return f" (did you mean {other + '.' + key!r}?)"
    return ""


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
    if not key:
        raise ConfigError(f"{where}: {item!r}: expected KEY=VALUE, e.g. train.lr=3e-4")
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
    if len(parts) > 2 and parts[0] in _SECTIONS and parts[1] not in section_fields(parts[0]):
        hint = _did_you_mean(parts[1], parts[0], sorted(section_fields(parts[0])))
        raise ConfigError(f"{where}: {key}: unknown key{hint}")
    if len(parts) == 3 and parts[0] == "model":
        return "model", f"{parts[1]}.{parts[2]}", value  # a composite's part (model.small.hidden)
    if len(parts) > 2 and parts[0] in _TOP_KEYS:
        # a key below a value: name the value, which holds no keys of its own
        raise ConfigError(
            f"{where}: {key}: {'.'.join(parts[:2])} is a value, not a section; "
            f"use {'.'.join(parts[:2])}=VALUE"
        )
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
        ctx = Where(where)
        if not section:
            merged[key] = value
            origins[key] = where
            continue
        target = merged.get(section)
        if target is None:
            target = merged[section] = {}
        elif not isinstance(target, dict):
            ctx.fail(section, f"expected a mapping of keys, got {show(target)}")
        part, _, leaf = key.rpartition(".")
        if part:  # below a model's part: a mapping of the composite model's
            if not isinstance(target.get(part), dict):
                ctx.fail(f"model.{part}", f"is not a model part here, so it has no key {leaf!r}")
            target = target[part]
        target[leaf] = value
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


def _as_mapping(ctx: Where, merged: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    raw = merged.get(section)
    if raw is None:  # `eval:` with nothing under it means "all defaults"
        return {}
    if not isinstance(raw, Mapping):
        ctx.fail(section, f"expected a mapping of keys, got {show(raw)}")
    return raw


def _build_model(ctx: Where, raw: Mapping[str, Any]) -> ModelConfig:
    from . import registry  # lazy: listing recipes should not import torch

    known = registry.list_models(composite=True)
    if "name" not in raw:
        ctx.fail("model.name", f"missing (one of {', '.join(known)})")
    name = raw["name"]
    if not isinstance(name, str):
        ctx.fail("model.name", f"expected a string, got {show(name)}")
    if name not in known:
        where = ctx.origins.get("model.name", ctx.source)
        raise UnknownModelError(
            f"{where}: model.name: unknown model {name!r}{did_you_mean(name, known)}; "
            f"valid names: {', '.join(known)}"
        )
    schema = registry.hparams_schema(name, exclude=_FROM_DATA)
    local = [*schema.model_fields, "name"]

    local.append("condition")

    def unknown(key: Any) -> str:
        if key == "cond_channels":
            return "set by model.condition and the data set (e.g. condition: class)"
        if key in _FROM_DATA:
            return "set by the data set, not the recipe (for a folder of images use data.channels)"
        return f"unknown key for model {name!r}{_did_you_mean(key, 'model', local)}"

    given = {k: v for k, v in raw.items() if k not in ("name", "condition")}
    missing = f" (model {name!r} has no default for it)"
    hparams = validated(ctx, schema, given, "model", unknown=unknown, missing=missing)
    condition = validated(ctx, _ConditionOnly, {"condition": raw.get("condition")}, "model")
    return ModelConfig(name=name, hparams=tuple(hparams), condition=condition.condition)


def _section_of(ctx: Where, section: str, raw: Mapping[str, Any]) -> Any:
    def unknown(key: Any) -> str:
        return f"unknown key{_did_you_mean(key, section, section_fields(section))}"

    return validated(ctx, _SECTIONS[section], raw, section, unknown=unknown)


# ---------------------------------------------------------------------------- public API


def section_fields(section: str) -> set[str]:
    """The keys a recipe section (``eval``, ``sample``, ...) has."""
    return {f.name for f in fields(_SECTIONS[section])}


def section_from_dict(section: str, raw: Any, *, source: str = "<dict>") -> Any:
    """One validated section of a recipe dict (``eval``, ``sample``, ...), its defaults
    filled in; a missing section (None) is all defaults."""
    ctx = Where(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        ctx.fail(section, f"expected a mapping, got {show(raw)}")
    return _section_of(ctx, section, raw)


def recipe_from_dict(
    d: Mapping[str, Any], *, source: str = "<dict>", overrides: Sequence[str] = ()
) -> Recipe:
    """Validate a recipe dict (e.g. parsed YAML), with ``--set`` overrides applied first."""
    merged, origins = _merge_overrides(d, overrides) if isinstance(d, Mapping) else (d, {})
    ctx = Where(source, origins)
    if merged is None:
        ctx.fail("", "the recipe is empty; it needs at least model, data and train sections")
    if not isinstance(merged, Mapping):
        ctx.fail("", f"expected a mapping with keys {', '.join(_TOP_KEYS)}; got {show(merged)}")
    for key in merged:
        if key not in _TOP_KEYS:
            ctx.fail(str(key), f"unknown key{_did_you_mean(key, None, _TOP_KEYS)}")
    top = dict(validated(ctx, _HEAD, {"description": merged.get("description")}))
    top["model"] = _build_model(ctx, _as_mapping(ctx, merged, "model"))
    for s in _SECTIONS:
        top[s] = _section_of(ctx, s, _as_mapping(ctx, merged, s))
    notes = _length_notes(d, merged) if isinstance(merged, Mapping) else ()
    return validated(ctx, Recipe, {**top, "source": source, "notes": notes})


def _length_notes(d: Mapping[str, Any], merged: Mapping[str, Any]) -> tuple[str, ...]:
    """Say so when a --set run length cleared the recipe's other one."""
    before, after = d.get("train"), merged.get("train")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ()
    notes = []
    for key, other in (("max_steps", "epochs"), ("epochs", "max_steps")):
        if before.get(other) is not None and after.get(other) is None and after.get(key):
            notes.append(
                f"--set train.{key}={after[key]} replaces the recipe's train.{other}: "
                f"{before[other]}"
            )
    return tuple(notes)


def recipe_schema() -> dict[str, Any]:
    """The JSON Schema of a recipe file, for editors (``pixelgen recipes --schema``): the
    sections as declared above; ``model`` one of the registered models' hyperparameters."""
    from . import registry

    schema = pydantic.TypeAdapter(Recipe).json_schema()
    schema["description"] = "A pixelgen recipe: `pixelgen train RECIPE` (see the README)."
    del schema["$defs"]["ModelConfig"]
    variants = []
    for name in registry.list_models(composite=True):
        hp = registry.hparams_schema(name, exclude=_FROM_DATA).model_json_schema()
        schema["$defs"].update(hp.pop("$defs", {}))
        condition = {"enum": [*CONDITION_KINDS, None], "description": "what the model is "
                     "conditioned on (§3.5); class: the data set's classes"}  # fmt: skip
        props = {"name": {"const": name}, "condition": condition, **hp["properties"]}
        required = ["name", *hp.get("required", [])]
        variants.append({"properties": props, "required": required, "additionalProperties": False})
    schema["properties"]["model"] = {
        "description": "A registered model (`pixelgen models`) and its hyperparameters; "
        "channels and levels come from the data set.",
        "type": "object",
        "properties": {"name": {"enum": registry.list_models(composite=True)}},
        "required": ["name"],
        "oneOf": variants,
    }
    return schema


def recipe_to_dict(r: Recipe) -> dict[str, Any]:
    """A plain YAML/JSON-able dict of every resolved value; ``recipe_from_dict`` inverts it."""

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    out: dict[str, Any] = {"description": r.description}
    out["model"] = {"name": r.model.name, **{k: plain(v) for k, v in r.model.hparams}}
    if r.model.condition is not None:  # absent when unconditional: older runs compare equal
        out["model"]["condition"] = r.model.condition
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

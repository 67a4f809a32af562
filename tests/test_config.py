"""Tests for the recipe schema (`pixelgen.config`) and the shipped recipes."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml

from pixelgen import registry
from pixelgen.config import (
    DataConfig,
    Recipe,
    apply_overrides,
    dump_recipe,
    load_recipe,
    recipe_from_dict,
    recipe_schema,
    recipe_to_dict,
    section_fields,
    section_from_dict,
    shipped_recipes,
)
from pixelgen.errors import ConfigError, UnknownModelError

SHIPPED = [name for name, _ in shipped_recipes()]

MINIMAL = {
    "description": "a test recipe",
    "model": {"name": "row_lstm", "hidden": 8, "layers": 2},
    "data": {"name": "binarized_mnist"},
    "train": {"max_steps": 10},
}


def minimal(**changes: dict) -> dict:
    d = copy.deepcopy(MINIMAL)
    for section, values in changes.items():
        d.setdefault(section, {}).update(values)
    return d


def config_error(d, *, overrides=(), source="recipes/x.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        recipe_from_dict(d, source=source, overrides=overrides)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


# ---------------------------------------------------------------- shipped recipes


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_loads_and_round_trips(name):
    r = load_recipe(name)
    assert r.description and "\n" not in r.description
    assert r.model.name in registry.list_models(composite=True)
    assert recipe_from_dict(recipe_to_dict(r)) == r
    assert recipe_from_dict(yaml.safe_load(dump_recipe(r))) == r


def test_required_recipes_are_shipped():
    required = {
        "mnist_pixelcnn", "mnist_rowlstm", "mnist_diagonal_bilstm",
        "mnist_diagonal_bilstm_1layer", "cifar10_pixelcnn", "cifar10_rowlstm",
        "cifar10_diagonal_bilstm", "imagenet32_rowlstm", "imagenet64_rowlstm",
        "quick_pixelcnn", "quick_rowlstm", "quick_diagonal_bilstm",
    }  # fmt: skip
    assert required <= set(SHIPPED)
    assert SHIPPED == sorted(SHIPPED)


@pytest.mark.parametrize(
    ("name", "model", "layers", "hidden", "data"),
    [
        ("mnist_pixelcnn", "pixelcnn", 15, 16, "binarized_mnist"),
        ("mnist_rowlstm", "row_lstm", 7, 16, "binarized_mnist"),
        ("mnist_diagonal_bilstm", "diagonal_bilstm", 7, 16, "binarized_mnist"),
        ("mnist_diagonal_bilstm_1layer", "diagonal_bilstm", 1, 32, "binarized_mnist"),
        ("cifar10_pixelcnn", "pixelcnn", 15, 128, "cifar10"),
        ("cifar10_rowlstm", "row_lstm", 12, 128, "cifar10"),
        ("cifar10_diagonal_bilstm", "diagonal_bilstm", 12, 128, "cifar10"),
        ("imagenet32_rowlstm", "row_lstm", 12, 128, "imagenet32"),
        ("imagenet64_rowlstm", "row_lstm", 12, 128, "imagenet64"),
    ],
)
def test_paper_recipes_match_the_paper(name, model, layers, hidden, data):
    r = load_recipe(name)
    kw = r.model.kwargs()
    assert (r.model.name, kw["layers"], kw["hidden"], r.data.name) == (model, layers, hidden, data)
    if data in ("binarized_mnist", "cifar10"):
        assert r.train.batch_size == 16
    text = (Path(__file__).parents[1] / "recipes" / f"{name}.yaml").read_text()
    assert text.startswith("# ") and "paper Table" in text and "Best knowledge" in text
    # The paper trains with RMSProp; a recipe tuned away from it says so in its header.
    assert r.train.optimizer == "rmsprop" or "Tuned here" in text


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("quick_")])
def test_quick_recipes_are_small(name):
    r = load_recipe(name)
    assert r.data.name == "binarized_mnist"
    # CPU-sized: at most a few epochs' worth of steps on a small model.
    assert r.train.max_steps is not None and r.train.max_steps * r.train.batch_size <= 150_000
    kw = r.model.kwargs()
    for part in [kw[k] for k in ("small", "large") if k in kw] or [kw]:  # multiscale: both
        assert part["layers"] <= 8 and part["hidden"] <= 32


def test_shipped_name_and_path_resolve_to_the_same_recipe():
    path = Path(__file__).parents[1] / "recipes" / "mnist_rowlstm.yaml"
    by_name = load_recipe("mnist_rowlstm")
    assert load_recipe("mnist_rowlstm.yaml") == by_name
    by_path = load_recipe(str(path))
    assert by_path == by_name
    assert by_name.source == "mnist_rowlstm" and by_path.source == str(path)


def test_unknown_recipe_name_suggests_a_shipped_one():
    with pytest.raises(ConfigError, match="did you mean 'mnist_rowlstm'"):
        load_recipe("mnist_rowlsm")


# ---------------------------------------------------------------- the schema


def test_defaults_and_resolved_model_hparams():
    r = recipe_from_dict(MINIMAL)
    assert r.train.batch_size == 16 and r.train.optimizer == "rmsprop" and r.train.lr == 1e-3
    assert r.train.grad_clip == 1.0 and r.train.device == "auto" and r.train.epochs is None
    assert (r.eval.split, r.eval.batch_size, r.sample.n, r.sample.method) == (
        "test",
        64,
        16,
        "fast",
    )
    kw = r.model.kwargs()
    # Builder defaults are filled in; channels/levels are left to the data set.
    assert kw["hidden"] == 8 and kw["layers"] == 2 and kw["skip"] is True
    assert "channels" not in kw and "levels" not in kw
    assert set(kw) == set(registry.model_hparams("row_lstm")) - {
        "channels",
        "levels",
        "cond_channels",
    }


def test_round_trip_dict_recipe_dict():
    d = minimal(
        data={"image_size": [28, 28], "binarize": "dynamic", "binarize_seed": 3},
        train={"lr": 3e-4, "schedule": "cosine", "grad_clip": None, "accumulate": 2},
        sample={"temperature": 0.8, "nrow": 4},
    )
    r = recipe_from_dict(d)
    out = recipe_to_dict(r)
    assert out["data"]["image_size"] == [28, 28] and out["train"]["grad_clip"] is None
    assert recipe_to_dict(recipe_from_dict(out)) == out
    assert recipe_from_dict(out) == r
    yaml.safe_dump(out)  # plain data, no tuples or custom objects
    assert r.data.image_size == (28, 28)


def test_source_does_not_take_part_in_equality():
    assert recipe_from_dict(MINIMAL, source="a.yaml") == recipe_from_dict(MINIMAL, source="b")


def test_frozen_dataclasses_cannot_be_mutated():
    r = recipe_from_dict(MINIMAL)
    assert isinstance(r, Recipe)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.train.lr = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.model.name = "pixelcnn"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.data = DataConfig(name="mnist")
    r.model.kwargs()["hidden"] = 99  # a copy: the recipe is unchanged
    assert r.model.kwargs()["hidden"] == 8
    hash(r)


def test_int_and_float_conversions():
    r = recipe_from_dict(minimal(train={"lr": 1, "max_steps": 1e4, "weight_decay": 0}))
    assert r.train.lr == 1.0 and isinstance(r.train.lr, float)
    assert r.train.max_steps == 10000 and isinstance(r.train.max_steps, int)


def test_yaml_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML (YAML 1.1) would read this as the string '3e-4'.
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(MINIMAL).replace("max_steps: 10", "max_steps: 10\n  lr: 3e-4"))
    assert load_recipe(str(path)).train.lr == pytest.approx(3e-4)
    # ...while things that only look like exponents stay strings.
    assert "'-e5'" in config_error(MINIMAL, overrides=["train.lr=-e5"])
    assert "'.e5'" in config_error(MINIMAL, overrides=["train.lr=.e5"])
    assert recipe_from_dict(MINIMAL, overrides=["train.lr=.5e-3", "train.max_steps=2E3"]).train == (
        recipe_from_dict(MINIMAL, overrides=["train.lr=0.0005", "train.max_steps=2000"]).train
    )


def test_data_options_for_load_split():
    r = recipe_from_dict(minimal(data={"root": "/d", "valid_size": 0, "image_size": 28}))
    assert r.data.options() == {"valid_size": 0, "image_size": 28}
    assert recipe_from_dict(MINIMAL).data.options() == {}


def test_empty_sections_mean_defaults():
    r = recipe_from_dict({**MINIMAL, "eval": None, "sample": {}})
    assert r.eval == recipe_from_dict(MINIMAL).eval


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        # unknown keys, with did-you-mean
        ("train", "lerning_rate", 1e-3, "unknown key (did you mean 'train.lr'?)"),
        ("train", "bach_size", 8, "unknown key (did you mean 'train.batch_size'?)"),
        ("train", "temperature", 2.0, "unknown key (did you mean 'sample.temperature'?)"),
        ("model", "hiden", 8, "unknown key for model 'row_lstm' (did you mean 'model.hidden'?)"),
        ("eval", "spilt", "test", "unknown key (did you mean 'eval.split'?)"),
        # wrong types
        ("train", "batch_size", "sixteen", "expected an integer, got 'sixteen'"),
        ("train", "batch_size", 2.5, "expected an integer, got 2.5"),
        ("train", "batch_size", True, "expected an integer, got true"),
        ("train", "compile", "yes", "expected true or false, got 'yes'"),
        ("train", "lr", True, "expected a number, got true"),
        ("train", "optimizer", "adamw",
         "expected one of 'rmsprop', 'adam', got 'adamw' (did you mean 'adam'?)"),
        ("model", "skip", 1, "expected true or false, got 1"),
        ("model", "out_hidden", "wide", "expected an integer or null, got 'wide'"),
        ("data", "name", "mnst", "expected one of"),
        ("data", "image_size", [28], "expected an integer, a list of 2 integers or null"),
        ("data", "channels", 2, "expected one of 1, 3 or null, got 2"),
        ("data", "channels", True, "expected one of 1, 3 or null, got true"),
        ("train", "device", "gpu", "expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        # out of range
        ("train", "lr", -1.0, "must be > 0, got -1.0"),
        ("train", "batch_size", 0, "must be >= 1, got 0"),
        ("train", "max_steps", 0, "must be >= 1, got 0"),
        ("train", "warmup_steps", -1, "must be >= 0, got -1"),
        ("train", "weight_decay", -0.1, "must be >= 0, got -0.1"),
        ("train", "grad_clip", 0, "must be > 0, got 0.0"),
        ("train", "lr_decay", 1.5, "must be <= 1, got 1.5"),
        ("train", "accumulate", 0, "must be >= 1, got 0"),
        ("train", "accumulate", 3, "must divide train.batch_size (16), got 3"),
        ("sample", "temperature", 0, "must be > 0, got 0.0"),
        ("eval", "batch_size", -4, "must be >= 1, got -4"),
        ("data", "image_size", [28, 0], "must be >= 1, got [28, 0]"),
        ("model", "hidden", 0, "must be >= 1, got 0"),
        ("model", "layers", 0, "must be >= 1, got 0"),
        ("model", "state_kernel", 4, "must be odd, got 4"),
        # fields the data set owns
        ("model", "channels", 3, "set by the data set"),
        ("model", "levels", 2, "set by the data set"),
        # max_steps / epochs
        ("train", "epochs", 3, "cannot be set together with train.max_steps"),
        ("train", "max_steps", None,
         "missing (set exactly one of train.max_steps and train.epochs)"),
    ],
)  # fmt: skip
def test_errors_name_the_source_and_full_key_path(section, key, value, expected):
    message = config_error(minimal(**{section: {key: value}}))
    assert message.startswith(f"recipes/x.yaml: {section}.{key}: {expected}")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["model"].pop("name"), "recipes/x.yaml: model.name: missing"),
        (lambda d: d.pop("model"), "recipes/x.yaml: model.name: missing"),
        (lambda d: d.pop("data"), "recipes/x.yaml: data.name: missing"),
        (lambda d: d.pop("train"), "recipes/x.yaml: train.max_steps: missing"),
        (lambda d: d.update(lr=1), "recipes/x.yaml: lr: unknown key (did you mean 'train.lr'?)"),
        (
            lambda d: d.update(modle={}),
            "recipes/x.yaml: modle: unknown key (did you mean 'model'?)",
        ),
        (lambda d: d.update(eval=[1]), "recipes/x.yaml: eval: expected a mapping of keys"),
        (
            lambda d: d.update(description="two\nlines"),
            "recipes/x.yaml: description: must be one line",
        ),
        (
            lambda d: d["model"].update(name=3),
            "recipes/x.yaml: model.name: expected a string, got 3",
        ),
    ],
)
def test_missing_and_misplaced_keys(mutate, expected):
    d = copy.deepcopy(MINIMAL)
    mutate(d)
    assert config_error(d).startswith(expected)


def test_unknown_model_is_an_unknown_model_error_with_did_you_mean():
    with pytest.raises(UnknownModelError) as info:
        recipe_from_dict(minimal(model={"name": "rowlstm"}), source="r.yaml")
    assert str(info.value).startswith("r.yaml: model.name: unknown model 'rowlstm'")
    assert "did you mean 'row_lstm'" in str(info.value)


def test_not_a_mapping():
    assert "expected a mapping" in config_error([1, 2])
    assert "empty" in config_error(None)


# ---------------------------------------------------------------- overrides


def test_overrides_set_values_parsed_as_yaml_scalars():
    items = ["train.lr=3e-4", "model.skip=false", "data.image_size=[28, 28]", "eval.max_images=100"]
    r = recipe_from_dict(MINIMAL, overrides=items)
    assert r.train.lr == pytest.approx(3e-4)
    assert r.model.kwargs()["skip"] is False
    assert r.data.image_size == (28, 28)
    assert r.eval.max_images == 100  # a key the dict lacked but the schema has


def test_apply_overrides_copies_and_can_switch_max_steps_to_epochs():
    d = copy.deepcopy(MINIMAL)
    out = apply_overrides(d, ["train.max_steps=null", "train.epochs=2", "description=hi"])
    assert d == MINIMAL  # the input is untouched
    assert out["train"] == {"max_steps": None, "epochs": 2} and out["description"] == "hi"
    r = recipe_from_dict(d, overrides=["train.max_steps=null", "train.epochs=2"])
    assert (r.train.max_steps, r.train.epochs) == (None, 2)


def test_override_can_change_the_model():
    d = {**MINIMAL, "model": {"name": "row_lstm"}}
    r = recipe_from_dict(d, overrides=["model.name=pixelcnn", "model.kernel=5"])
    assert r.model.name == "pixelcnn" and r.model.kwargs()["kernel"] == 5


def test_a_run_length_on_the_command_line_replaces_the_recipes():
    by_epochs = load_recipe("mnist_rowlstm", ["train.max_steps=100"])
    assert (by_epochs.train.max_steps, by_epochs.train.epochs) == (100, None)
    by_steps = load_recipe("quick_rowlstm", ["train.epochs=2"])
    assert (by_steps.train.max_steps, by_steps.train.epochs) == (None, 2)
    message = config_error(MINIMAL, overrides=["train.epochs=3", "train.max_steps=5"])
    assert "cannot be set together with train.max_steps" in message
    # ... and says so; the notes take no part in equality
    assert by_epochs.notes == ("--set train.max_steps=100 replaces the recipe's train.epochs: 20",)
    assert by_steps.notes[0].startswith(
        "--set train.epochs=2 replaces the recipe's train.max_steps"
    )
    assert load_recipe("quick_rowlstm", ["train.max_steps=7"]).notes == ()


def test_train_prints_the_note(tmp_path, capsys):
    from pixelgen.cli import main

    sets = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.epochs=1",
            "data.valid_size=59990", "train.eval_max_images=4", "sample.n=1"]  # fmt: skip
    argv = ["train", "quick_rowlstm", "--no-progress", "--out", str(tmp_path / "r")]
    assert main([*argv, *(a for s in sets for a in ("--set", s))]) == 0
    assert "note: --set train.epochs=1 replaces the recipe's train.max_steps: 1500" in " ".join(
        capsys.readouterr().err.split()
    )


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("train.lerning_rate=3e-4",
         "train.lerning_rate: unknown key (did you mean 'train.lr'?)"),
        ("model.skp=false",
         "model.skp: unknown key for model 'row_lstm' (did you mean 'model.skip'?)"),
        ("trian.lr=1", "trian.lr: unknown key (did you mean 'train.lr'?)"),
        ("train.lr.x=1", "train.lr.x: train.lr is a value, not a section"),
        ("train.lerning.rate=1", "train.lerning.rate: unknown key (did you mean"),
        ("train=1", "train: is a section"),
        ("train.lr", "expected KEY=VALUE"),
        ("train.lr=abc", "train.lr: expected a number, got 'abc'"),
        ("train.lr=-1", "train.lr: must be > 0, got -1.0"),
        ("model.hidden=many", "model.hidden: expected an integer, got 'many'"),
        ("model.channels=3", "model.channels: set by the data set"),
        ("train.accumulate=3", "train.accumulate: must divide train.batch_size"),
        ("train.lr=[", "train.lr: cannot read the value as YAML"),
        ("model.name=rowlstm", "model.name: unknown model 'rowlstm'"),
    ],
)  # fmt: skip
def test_bad_overrides(item, expected):
    # The --set item, not the recipe file, is named as the source.
    assert config_error(MINIMAL, overrides=[item]).startswith(f"--set {item!r}: {expected}")


def test_apply_overrides_alone_validates_keys_and_values():
    with pytest.raises(ConfigError, match=r"train\.lerning_rate: unknown key"):
        apply_overrides(MINIMAL, ["train.lerning_rate=1"])
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected an integer"):
        apply_overrides(MINIMAL, ["train.batch_size=big"])


# ---------------------------------------------------------------- files


def test_yaml_syntax_error_is_a_one_line_config_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  name: row_lstm\n train: [\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(str(path))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: line 3, column ")
    assert "YAML syntax error" in message


def test_duplicate_yaml_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "model:\n  name: pixelcnn\n")
    with pytest.raises(ConfigError, match="duplicate key 'model'"):
        load_recipe(str(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="no such recipe file"):
        load_recipe(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_recipe(str(tmp_path))


def test_load_recipe_with_overrides_names_the_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(minimal(train={"lr": -2.0})))
    with pytest.raises(ConfigError, match=rf"^{path}: train\.lr: must be > 0"):
        load_recipe(str(path))
    assert load_recipe(str(path), ["train.lr=0.01"]).train.lr == 0.01


def test_dump_recipe_loads_back_equal(tmp_path):
    r = load_recipe("quick_pixelcnn", ["train.lr=2e-4", "data.image_size=[28, 28]"])
    text = dump_recipe(r)
    assert text.startswith("# ") and "lr: 0.0002" in text
    path = tmp_path / "resolved.yaml"
    path.write_text(text)
    assert load_recipe(str(path)) == r


# ---------------------------------------------------------------- model hyperparameters


def fake_net(
    *,
    channels: int = 1,
    levels: int = 256,
    width: int,
    dropout: float = 0.0,
    act: str = "relu",
    out_hidden: int | None = None,
    gated: bool = False,
):
    """A stand-in builder to test validation against any registered signature."""
    raise AssertionError("config must not build models")


@pytest.fixture
def fake_model(monkeypatch):
    registry.list_models()  # load the real ones first
    monkeypatch.setitem(registry._MODELS, "fake_net", fake_net)
    return {**MINIMAL, "model": {"name": "fake_net", "width": 4}}


def test_fake_model_hparams_follow_the_builder_signature(fake_model):
    r = recipe_from_dict(fake_model, overrides=["model.dropout=1", "model.act=gelu"])
    assert r.model.kwargs() == {
        "width": 4, "dropout": 1.0, "act": "gelu", "out_hidden": None, "gated": False,
    }  # fmt: skip
    assert isinstance(r.model.kwargs()["dropout"], float)
    assert recipe_from_dict(recipe_to_dict(r)) == r


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"width": None}, "model.width: expected an integer, got null"),
        ({"dropout": "high"}, "model.dropout: expected a number, got 'high'"),
        ({"act": 3}, "model.act: expected a string, got 3"),
        ({"gated": "no"}, "model.gated: expected true or false, got 'no'"),
        ({"out_hidden": 0}, "model.out_hidden: must be >= 1, got 0"),
        (
            {"widht": 4},
            "model.widht: unknown key for model 'fake_net' (did you mean 'model.width'?)",
        ),
    ],
)
def test_fake_model_errors(fake_model, changes, expected):
    d = copy.deepcopy(fake_model)
    d["model"].update(changes)
    assert expected in config_error(d)


def test_fake_model_required_hparam_missing(fake_model):
    d = copy.deepcopy(fake_model)
    del d["model"]["width"]
    assert "model.width: missing" in config_error(d)


# ---------------------------------------------------------------- declared once


def test_more_problems_in_a_section_report_the_first_in_the_file():
    d = minimal(train={"bach_size": 8, "lr": -1.0})
    assert "train.bach_size: unknown key" in config_error(d)
    d = minimal(train={"lr": -1.0, "bach_size": 8})
    assert "train.lr: must be > 0, got -1.0" in config_error(d)
    d = minimal(train={"grad_clip": float("inf")})
    assert "train.grad_clip: must be a finite number, got inf" in config_error(d)


def test_sections_validate_where_they_are_made():
    assert section_from_dict("sample", {"n": 4.0}).n == 4
    with pytest.raises(ConfigError, match=r"^ck.pt: eval.split: expected one of 'test'"):
        section_from_dict("eval", {"split": "tset"}, source="ck.pt")
    with pytest.raises(ConfigError, match=r"^<dict>: sample: expected a mapping, got \[1\]$"):
        section_from_dict("sample", [1])
    # Replacing a field validates it too.
    r = recipe_from_dict(MINIMAL)
    assert dataclasses.replace(r.train, lr=0.5).lr == 0.5
    with pytest.raises(ValueError, match="greater than 0"):
        dataclasses.replace(r.train, lr=-1.0)


def _conforms(value, schema: dict, root: dict) -> bool:
    """Whether ``value`` fits ``schema``: the part of JSON Schema that recipe_schema() uses."""
    if "$ref" in schema:
        return _conforms(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    types = {
        "integer": number and float(value).is_integer(), "number": number,
        "string": isinstance(value, str), "boolean": isinstance(value, bool),
        "null": value is None, "object": isinstance(value, dict), "array": isinstance(value, list),
    }  # fmt: skip
    same = lambda a, b: type(a) is type(b) and a == b  # noqa: E731 (true is not 1)
    checks = [
        "type" not in schema or types[schema["type"]],
        "enum" not in schema or any(same(value, c) for c in schema["enum"]),
        "const" not in schema or same(value, schema["const"]),
        "anyOf" not in schema or any(_conforms(value, s, root) for s in schema["anyOf"]),
        "oneOf" not in schema or sum(_conforms(value, s, root) for s in schema["oneOf"]) == 1,
        "not" not in schema or not _conforms(value, schema["not"], root),
    ]
    if number:
        checks += [
            value >= schema.get("minimum", -float("inf")),
            value > schema.get("exclusiveMinimum", -float("inf")),
            value <= schema.get("maximum", float("inf")),
            value % schema.get("multipleOf", 1) == 0 if "multipleOf" in schema else True,
        ]
    if isinstance(value, str) and "pattern" in schema:
        checks.append(re.search(schema["pattern"], value) is not None)
    if isinstance(value, list):
        items = schema.get("prefixItems", [])
        checks += [schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value))]
        checks += [_conforms(v, s, root) for v, s in zip(value, items, strict=False)]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        checks += [k in value for k in schema.get("required", [])]
        checks += [_conforms(v, props[k], root) for k, v in value.items() if k in props]
        if schema.get("additionalProperties") is False:
            checks += [k in props for k in value]
    return all(checks)


def test_recipe_schema_is_json_with_the_declared_keys_and_ranges():
    schema = json.loads(json.dumps(recipe_schema()))
    assert set(schema["properties"]) == {"description", "model", "data", "train", "eval", "sample"}
    assert set(schema["required"]) == {"model", "data", "train"}
    defs = schema["$defs"]
    for section, name in [("data", "DataConfig"), ("train", "TrainConfig"),
                          ("eval", "EvalConfig"), ("sample", "SampleConfig")]:  # fmt: skip
        assert set(defs[name]["properties"]) == section_fields(section)
        assert defs[name]["additionalProperties"] is False
    train = defs["TrainConfig"]["properties"]
    assert train["batch_size"] == {
        "default": 16,
        "minimum": 1,
        "title": "Batch Size",
        "type": "integer",
    }
    assert train["lr"]["exclusiveMinimum"] == 0 and train["lr"]["type"] == "number"
    assert train["lr_decay"]["maximum"] == 1 and train["warmup_steps"]["minimum"] == 0
    assert train["optimizer"]["enum"] == ["rmsprop", "adam"]
    assert re.search(train["device"]["pattern"], "cuda:1")
    assert not re.search(train["device"]["pattern"], "gpu")
    model = schema["properties"]["model"]
    assert model["properties"]["name"]["enum"] == registry.list_models(composite=True)
    hparams = {v["properties"]["name"]["const"]: v["properties"] for v in model["oneOf"]}
    for name, props in hparams.items():
        known = set(registry.model_hparams(name)) - {"channels", "levels", "cond_channels"}
        assert set(props) == known | {"name", "condition"}
    assert hparams["pixelcnn"]["kernel"]["not"] == {"multipleOf": 2}
    assert hparams["row_lstm"]["layers"]["minimum"] == 1


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_fits_the_schema(name):
    schema = recipe_schema()
    root = Path(__file__).parents[1]
    for folder in (root / "recipes", root / "src" / "pixelgen" / "recipes"):
        raw = yaml.safe_load((folder / f"{name}.yaml").read_text())
        assert _conforms(raw, schema, schema)
    assert _conforms(recipe_to_dict(load_recipe(name)), schema, schema)


@pytest.mark.parametrize(
    "changes",
    [
        {"train": {"lr": -1.0}},
        {"train": {"lerning_rate": 1e-3}},
        {"train": {"batch_size": True}},
        {"train": {"device": "gpu"}},
        {"data": {"channels": 2}},
        {"data": {"image_size": [28, 0]}},
        {"model": {"hiden": 8}},
        {"model": {"name": "rowlstm"}},
        {"model": {"name": "pixelcnn", "kernel": 4}},
        {"model": {"state_kernel": 3, "name": "pixelcnn"}},
        {"sample": {"method": "slow"}},
    ],
)
def test_the_schema_refuses_what_the_validator_refuses(changes):
    schema = recipe_schema()
    d = minimal(**changes)
    assert _conforms(MINIMAL, schema, schema)
    assert not _conforms(d, schema, schema)
    with pytest.raises(ConfigError):
        recipe_from_dict(d)

"""Class-conditional models end to end (``model.condition: class``): the recipe key, the
labels of every data set that has them (and the one-line error where a set has none),
training, eval, sample, complete and export from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import pixelgen
import pixelgen.cli  # noqa: F401  (registers every command)
from pixelgen.cli.app import main
from pixelgen.config import load_recipe, recipe_from_dict, recipe_to_dict
from pixelgen.data import load_split
from pixelgen.errors import ConditionError, ConfigError
from pixelgen.export import export_checkpoint, load_exported
from pixelgen.images import save_image
from test_data import isolated, png_bytes, write_cifar_folder, write_npz_batches  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


# ---------------------------------------------------------------- the recipe key


def test_model_condition_is_a_recipe_key_that_round_trips():
    r = load_recipe("quick_class_pixelcnn")
    assert r.model.condition == "class" and "cond_channels" not in r.model.kwargs()
    assert recipe_from_dict(recipe_to_dict(r)) == r
    plain = load_recipe("quick_class_pixelcnn", ["model.condition=null"])
    assert plain.model.condition is None and "condition" not in recipe_to_dict(plain)["model"]
    with pytest.raises(ConfigError, match="model.condition: expected one of 'class'.*'class'"):
        load_recipe("quick_class_pixelcnn", ["model.condition=clas"])
    with pytest.raises(ConfigError, match="model.cond_channels: set by model.condition"):
        load_recipe("quick_pixelcnn", ["model.cond_channels=3"])


# ---------------------------------------------------------------- labels of the data sets


def test_mnist_and_its_binarizations_carry_the_digits():
    for name, opts in [
        ("mnist", {}),
        ("binarized_mnist", {}),
        ("binarized_mnist", {"binarize": "dynamic"}),
    ]:
        test = load_split(name, "test", **opts).with_labels()
        image, label = test[0]
        assert image.shape == (1, 28, 28) and label == 7  # MNIST's first test digit
        x, y = test.batch([0, 1, 2])
        assert x.shape == (3, 1, 28, 28) and y.tolist() == [7, 2, 1]
        assert test.class_names == [str(k) for k in range(10)]
        assert test.info()["classes"] == test.class_names


def test_the_standard_binarization_has_no_labels_and_says_so(tmp_path):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    (folder / "binarized_mnist_test.amat").write_text(("0 " * 783 + "1\n") * 2)
    test = load_split("binarized_mnist", "test", root=str(tmp_path), binarize="standard")
    with pytest.raises(ConditionError, match=r"^model.condition: class needs class labels.*"
                       r"published without labels; data.binarize: static"):  # fmt: skip
        test.with_labels()


def test_cifar10_and_imagenet_npz_labels(tmp_path):
    write_cifar_folder(tmp_path / "c")
    test = load_split("cifar10", "test", root=str(tmp_path / "c"), valid_size=10).with_labels()
    assert test[0][1] == 5 and test.class_names[0] == "airplane" and len(test.class_names) == 10
    write_npz_batches(tmp_path / "i", 32)
    train = load_split("imagenet32", "train", root=str(tmp_path / "i")).with_labels()
    assert train[1][1] == 1 and len(train.class_names) == 1000  # published 1..1000


def test_imagenet_pngs_have_no_labels(tmp_path):
    (tmp_path / "valid_32x32").mkdir()
    img = np.zeros((32, 32, 3), np.uint8)
    (tmp_path / "valid_32x32" / "0.png").write_bytes(png_bytes(img))
    test = load_split("imagenet32", "test", root=str(tmp_path))
    with pytest.raises(ConditionError, match="PNG form is published without labels"):
        test.with_labels()


def test_folder_classes_are_its_subfolders(tmp_path):
    img = png_bytes(np.zeros((4, 4, 3), np.uint8))
    for split, cls, k in [("train", "cat", 0), ("train", "dog", 1), ("test", "dog", 2)]:
        (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
        (tmp_path / split / cls / f"{k}.png").write_bytes(img)
    (tmp_path / "valid" / "cat").mkdir(parents=True)
    (tmp_path / "valid" / "cat" / "3.png").write_bytes(img)
    test = load_split("folder", "test", root=str(tmp_path)).with_labels()
    assert test.class_names == ["cat", "dog"] and test[0][1] == 1
    (tmp_path / "train" / "loose.png").write_bytes(img)
    train = load_split("folder", "train", root=str(tmp_path))
    with pytest.raises(ConditionError, match="train/loose.png is in no class subfolder"):
        train.with_labels()


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny class-conditional run on binarized MNIST, trained for 3 steps."""
    out = tmp_path_factory.mktemp("cond") / "run"
    args = [
        "train", "quick_class_pixelcnn", "--out", str(out), "--no-progress",
        "--set", "model.hidden=4", "--set", "model.layers=1", "--set", "train.max_steps=3",
        "--set", "train.batch_size=4", "--set", "train.eval_every=3",
        "--set", "train.eval_max_images=8", "--set", "sample.n=2", "--set", "data.valid_size=100",
    ]  # fmt: skip
    assert main(args) == 0
    return out


def test_training_records_the_condition_in_the_checkpoint(run):
    ckpt = pixelgen.checkpoint.load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt.hparams["cond_channels"] == 10 and ckpt.recipe["model"]["condition"] == "class"
    info = ckpt.condition()
    assert info.kind == "class" and info.names == tuple(str(k) for k in range(10))
    assert ckpt.build_model().condition is not None


def test_eval_reports_the_conditional_nll(run, capsys, tmp_path):
    report = tmp_path / "r.json"
    assert (
        main(["eval", str(run), "--max-images", "8", "--no-progress", "--json", str(report)]) == 0
    )
    assert "conditional: -log p(image | class)" in capsys.readouterr().err
    got = json.loads(report.read_text())
    assert got["condition"]["kind"] == "class" and got["condition"]["classes"] == 10
    # Scored given each image's own class: the mean of the model's log p(x | y).
    model = pixelgen.load_model(run / "checkpoints" / "last.pt")
    x, y = load_split("binarized_mnist", "test").with_labels().batch(range(8))
    with torch.no_grad():
        nll = -model.log_prob(x.long(), y).mean().item()
    assert abs(got["nll_nats"] - nll) < 1e-3


def test_sample_one_class_and_every_class(run, tmp_path, capsys):
    out = tmp_path / "seven.png"
    assert main(["sample", str(run), "--class", "7", "-n", "2", "--out", str(out)]) == 0
    assert "class 7" in capsys.readouterr().err
    grid = tmp_path / "all.png"
    assert main(["sample", str(run), "--class", "all", "-n", "2", "--out", str(grid)]) == 0
    with Image.open(grid) as img:  # 10 rows of 2 (28x28 at 4x, padding 2) and a label column
        w, h = img.size
    assert h == 4 * (10 * 30 + 2) and w > 4 * (2 * 30 + 2)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--class", "10"], "--class: class 10 is out of range: this model has classes 0..9"),
        (["--class", "seven"], "--class: 'seven' is no class of this model"),
    ],
)
def test_bad_classes_are_one_line_errors(run, tmp_path, capsys, args, message):
    assert main(["sample", str(run), *args, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {message}" or (err.startswith("error: " + message) and "\n" not in err)


def test_class_on_an_unconditional_model_is_a_one_line_error(capsys):
    assert main(["sample", "mnist_pixelcnn", "--class", "3"]) == 2
    assert "this model is not class-conditional" in capsys.readouterr().err


def test_complete_under_a_class_and_without_one(run, tmp_path, capsys):
    image = tmp_path / "digit.png"
    x, _ = load_split("binarized_mnist", "test").with_labels().batch([0])
    save_image(x[0], 2, image)
    out = tmp_path / "c"
    args = ["complete", str(run), "--occlude", "bottom-half", str(image), "--samples", "1"]
    assert main([*args, "--class", "7", "--out", str(out)]) == 0
    assert (out / "digit_grid.png").is_file()
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--class: this model is class-conditional and image files carry no class" in err


@pytest.mark.parametrize("fmt", ["safetensors", "torchscript", "onnx"])
def test_exports_take_the_classes_as_a_second_input(run, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    out = tmp_path / f"m.{ {'torchscript': 'ts'}.get(fmt, fmt) }"
    report = export_checkpoint(run / "checkpoints" / "last.pt", fmt, out, batch=3)
    assert report.max_abs_diff <= report.bound
    model = pixelgen.load_model(run / "checkpoints" / "last.pt")
    program = load_exported(out, fmt)
    x = torch.randint(0, 2, (2, 1, 28, 28))
    with torch.no_grad():
        for y in (torch.tensor([0, 9]), torch.tensor([3, 3])):
            torch.testing.assert_close(program(x, y).float(), model(x, y), atol=1e-3, rtol=0)
        assert (program(x, torch.tensor([0, 0])) - program(x, torch.tensor([5, 5]))).abs().max() > 0


def test_a_torchscript_program_refuses_a_class_out_of_range():
    """The trace takes labels as they are (``nn/condition._one_hot``): the shell checks
    their range, as the eager model does, rather than give the logits of no class."""
    from pixelgen.export.torchscript_io import build_program

    model = pixelgen.create_model(
        "pixelcnn", channels=1, levels=2, hidden=4, layers=1, cond_channels=3
    ).eval()
    model.model_name = "pixelcnn"
    program = build_program(model, height=4, width=4)
    x = torch.randint(0, 2, (2, 1, 4, 4))
    with torch.no_grad():
        torch.testing.assert_close(program(x, torch.tensor([0, 2])), model(x, torch.tensor([0, 2])))
        for bad in ([0, 3], [-1, 1]):
            with pytest.raises(Exception, match=r"classes \(B,\) in \[0, 3\)"):
                program(x, torch.tensor(bad))


def test_an_onnx_program_refuses_a_class_out_of_range(run, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    export_checkpoint(run / "checkpoints" / "last.pt", "onnx", out, batch=2)
    program = load_exported(out, "onnx")
    x = torch.randint(0, 2, (1, 1, 28, 28))
    assert program(x, torch.tensor([9])).shape == (1, 2, 1, 28, 28)
    for bad in (10, -1):
        with pytest.raises(Exception, match=r"classes \(B,\) in \[0, 10\)"):
            program(x, torch.tensor([bad]))


def test_a_conditional_run_resumes(run, tmp_path):
    """``--resume`` rebuilds the conditional model from the recipe and the labelled data,
    and its weights and condition load into it."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run, out)
    recipe = str(out / "recipe.yaml")
    args = ["train", recipe, "--out", str(out), "--no-progress", "--resume"]
    assert main([*args, "--set", "train.max_steps=5"]) == 0
    ckpt = pixelgen.checkpoint.load_checkpoint(out / "checkpoints" / "last.pt")
    assert (
        ckpt.step == 5
        and ckpt.condition()
        == pixelgen.checkpoint.load_checkpoint(run / "checkpoints" / "last.pt").condition()
    )


def test_resume_refuses_a_run_whose_classes_differ_from_the_data(run, tmp_path, capsys):
    """The data section can stay the same while the set's classes change (a folder given
    a new class subfolder): one line naming the classes, not a state-dict traceback."""
    import dataclasses
    import shutil

    from pixelgen.checkpoint import load_checkpoint, save_checkpoint

    out = tmp_path / "run"
    shutil.copytree(run, out)
    last = out / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(last)
    weights = {
        k: v[:, :9] if k.startswith("condition.maps.") else v for k, v in ckpt.weights.items()
    }
    data = {**ckpt.data, "classes": ckpt.data["classes"][:9]}
    hparams = {**ckpt.hparams, "cond_channels": 9}
    save_checkpoint(last, dataclasses.replace(ckpt, weights=weights, data=data, hparams=hparams))
    capsys.readouterr()
    args = ["train", str(out / "recipe.yaml"), "--out", str(out), "--no-progress", "--resume"]
    assert main([*args, "--set", "train.max_steps=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume:") and "9 classes" in err and "10" in err, err
    assert "\n" not in err and "Traceback" not in err


def test_an_unconditional_model_scores_a_labelled_set_without_its_labels():
    # A labelled set is what a class-conditional run loads; an unconditional model given
    # the same set must score the images alone, as on the unlabelled set.
    from pixelgen.evaluate import evaluate

    model = pixelgen.create_model("pixelcnn", channels=1, levels=2, hidden=4, layers=1)
    plain = load_split("binarized_mnist", "test")
    labelled = load_split("binarized_mnist", "test").with_labels()
    with torch.no_grad():
        want = evaluate(model, plain, max_images=8).nll_nats
        got = evaluate(model, labelled, max_images=8).nll_nats
    assert got == pytest.approx(want, abs=1e-9)

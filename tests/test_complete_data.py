"""``pixelgen complete --split``: completing images of the checkpoint's own data set, each
under its true class for a class-conditional model, on tiny checkpoints of binarized MNIST
(shipped with the package, so these run offline)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import pixelgen.cli  # noqa: F401  (registers every command)
from conftest import tiny_model
from pixelgen.checkpoint import Checkpoint, save_checkpoint
from pixelgen.cli.app import main
from pixelgen.data import load_split
from pixelgen.images import load_image, occlusion_mask
from pixelgen.sampling import api, complete
from test_multiscale import tiny_multiscale

DATA = {"name": "binarized_mnist", "binarize": "static"}
DIGITS = [str(k) for k in range(10)]


def save(tmp_path, name, model, *, condition=None, data=DATA, run=None):
    path = tmp_path / "runs" / (run or name) / "checkpoints" / "last.pt"
    recipe = {"model": {"name": name, "condition": condition}, "sample": {"seed": 3}}
    desc = {"height": 28, "width": 28, "levels": model.levels, "channels": 1}
    if condition:
        desc["classes"] = DIGITS
    recipe |= {"data": data} if data else {}
    hparams, weights = model.hparams, model.state_dict()
    save_checkpoint(
        path, Checkpoint(name, hparams=hparams, weights=weights, recipe=recipe, data=desc)
    )
    return path


@pytest.fixture
def cond(tmp_path):
    """A tiny class-conditional PixelCNN whose class matters: its condition weights are
    scaled up, so a completion under another class differs."""
    model = tiny_model("pixelcnn", levels=2, hidden=4, layers=1, cond_channels=10).float()
    with torch.no_grad():
        model.condition.maps[0].weight.mul_(20)
    return save(tmp_path, "pixelcnn", model, condition="class"), model


def truth(rows):
    """Images ``rows`` of the test split ``(N, C, H, W)`` and their classes ``(N,)``."""
    x, y = load_split("binarized_mnist", "test", binarize="static").with_labels().batch(rows)
    return x.long(), y


def expected(model, x, labels, samples, seed=3):
    """What ``complete`` should write: one batch of every image ``samples`` times, under
    ``labels`` ``(N*K,)``, from the recipe's seed; ``(N, K, C, H, W)``."""
    known = ~occlusion_mask("bottom-half", (28, 28), seed=seed)
    xs = x.repeat_interleave(samples, 0)
    got = complete(model, xs, known, generator=torch.Generator().manual_seed(seed), cond=labels)
    return got.view(len(x), samples, *x.shape[1:])


def written(out, stem, samples):
    return torch.stack(
        [
            load_image(out / f"{stem}_{k}.png", channels=1, levels=2)[0]
            for k in range(1, samples + 1)
        ]
    )


def run(ckpt, out, *extra):
    args = ["complete", "-c", str(ckpt), "--occlude", "bottom-half", "--out", str(out)]
    return main([*args, "--split", "test", "--samples", "2", *extra])


def test_each_image_is_completed_under_its_true_class(cond, tmp_path, capsys):
    path, model = cond
    out = tmp_path / "c"
    assert run(path, out, "--max-images", "3") == 0
    x, y = truth(range(3))
    assert y.tolist() == [7, 2, 1]
    want = expected(model, x, y.repeat_interleave(2), 2)  # (3, 2, 1, 28, 28)
    err = capsys.readouterr().err
    for i in range(3):
        got = written(out, f"test_{i:05d}", 2)
        assert torch.equal(got, want[i])
        assert torch.equal(got[:, :, :14], x[i, :, :14].expand(2, -1, -1, -1))  # known kept
        assert (out / f"test_{i:05d}_grid.png").is_file()
        assert f"test {i} (class {y[i]}, its own): {out}/test_{i:05d}_grid.png" in err
    # The class matters to this model: under another class the same draws differ.
    assert not torch.equal(want, expected(model, x, torch.tensor([0]), 2))


def test_the_condition_passed_is_each_completions_class(cond, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(api, "complete", lambda m, x, k, **kw: seen.append(kw["cond"]) or x)
    assert run(cond[0], tmp_path / "c", "--start", "1", "--max-images", "2") == 0
    assert seen[0].tolist() == [2, 2, 1, 1]  # test images 1 and 2, two completions each
    assert run(cond[0], tmp_path / "c", "--start", "1", "--max-images", "2", "--class", "3") == 0
    assert seen[1].tolist() == [3]  # --class replaces each image's own, for all


def test_class_overrides_the_true_one(cond, tmp_path, capsys):
    path, model = cond
    out = tmp_path / "c"
    assert run(path, out, "--max-images", "1", "--class", "3") == 0
    x, _ = truth(range(1))
    assert torch.equal(written(out, "test_00000", 2), expected(model, x, torch.tensor([3]), 2)[0])
    err = capsys.readouterr().err
    assert "test 0 (class 3): " in err and "its own" not in err


def test_an_unconditional_model_from_the_most_recent_run(tmp_path, capsys, monkeypatch):
    model = tiny_model("row_lstm", levels=2, hidden=4, layers=1).float()
    save(tmp_path, "row_lstm", model)
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    args = ["complete", "--occlude", "bottom-half", "--split", "test", "--max-images", "1"]
    assert main([*args, "--start", "4", "--samples", "2"]) == 0
    x, _ = truth(range(4, 5))
    assert torch.equal(
        written(tmp_path / "completions", "test_00004", 2), expected(model, x, None, 2)[0]
    )
    err = capsys.readouterr().err
    assert "most recent run" in err and "test 4: completions/test_00004_grid.png" in err


def test_a_multiscale_model(tmp_path):
    model = tiny_multiscale("row_lstm", "pixelcnn", levels=2, seed=4).float()
    path = save(tmp_path, "multiscale", model)
    assert run(path, tmp_path / "c", "--max-images", "1") == 0
    x, _ = truth(range(1))
    assert torch.equal(written(tmp_path / "c", "test_00000", 2), expected(model, x, None, 2)[0])


def one_line_error(capsys, code, message):
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and message in err, err


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--split", "test", "a.png"], "--split: give image files or --split, not both"),
        (["--max-images", "2", "a.png"], "--max-images: only with --split"),
        (["--download", "a.png"], "--download: only with --split"),
        (["--split", "tst"], "--split: must be one of train, valid, test, got 'tst'"),
        (["--split", "test", "--start", "10000"], "--start 10000: binarized_mnist test has only"),
        (["--split", "test", "--class", "10"], "--class: class 10 is out of range"),
    ],
)
def test_bad_combinations_are_one_line_errors(cond, tmp_path, capsys, extra, message):
    code = main(["complete", "-c", str(cond[0]), "--occlude", "bottom-half", *extra])
    one_line_error(capsys, code, message)


def test_checkpoints_without_a_usable_data_set(tmp_path, capsys):
    plain = tiny_model("pixelcnn", levels=2, hidden=4, layers=1).float()
    args = ["--occlude", "bottom-half", "--split", "test"]
    missing = save(tmp_path, "pixelcnn", plain, data={"name": "cifar10", "root": str(tmp_path)})
    code = main(["complete", "-c", str(missing), *args, "--data-root", str(tmp_path / "none")])
    one_line_error(capsys, code, "data set 'cifar10' not found")
    bare = save(tmp_path, "pixelcnn", plain, data=None, run="bare")
    one_line_error(capsys, main(["complete", "-c", str(bare), *args]), "records no data set")
    one_line_error(capsys, main(["complete", "-c", str(bare), *args[:2]]), "or --split")
    cls = save(tmp_path, "pixelcnn", plain, run="plain")
    code = main(["complete", "-c", str(cls), *args, "--class", "3"])
    one_line_error(capsys, code, "--class: this model is not class-conditional")


def test_a_split_without_labels_needs_a_class(tmp_path, capsys):
    (tmp_path / "pngs" / "test").mkdir(parents=True)
    Image.new("L", (28, 28)).save(tmp_path / "pngs" / "test" / "loose.png")  # in no class folder
    data = {"name": "folder", "root": str(tmp_path / "pngs"), "channels": 1}
    model = tiny_model("pixelcnn", levels=256, hidden=4, layers=1, cond_channels=10).float()
    path = save(tmp_path, "pixelcnn", model, condition="class", data=data)
    code = main(["complete", "-c", str(path), "--occlude", "bottom-half", "--split", "test"])
    one_line_error(capsys, code, "--class: this model is class-conditional and folder test has no")

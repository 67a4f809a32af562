"""Shipped pretrained models: listed, taken by name by every command, the default where
there is no run, verified when loaded, and (for the real shipped files) still scoring what
their metadata records."""

from __future__ import annotations

import pytest
import torch

import pixelgen
from pixelgen import pretrained, sources
from pixelgen.checkpoint import load_checkpoint
from pixelgen.cli.app import main
from pixelgen.cli.catalog import _count
from pixelgen.config import load_recipe
from pixelgen.data import load_split
from pixelgen.errors import CheckpointError
from pixelgen.evaluate import evaluate
from pixelgen.images import load_image, save_image
from pixelgen.train import train

TINY = [
    "model.hidden=4",
    "model.layers=1",
    "train.max_steps=2",
    "train.batch_size=4",
    "train.eval_every=2",
    "train.checkpoint_every=2",
    "train.eval_max_images=4",
]
RESULTS = {
    "test_nll_nats": 500.0,
    "test_nll_nats_stderr": 1.5,
    "images_seen": 8,
    "train_hours": 0.001,
    "parameters": 1234,
    "data": "binarized_mnist test",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("tiny") / "run"
    train(load_recipe("quick_pixelcnn", TINY), run_dir=run, show_progress=False, log=lambda *a: 0)
    return run


@pytest.fixture
def shelf(tiny_run, tmp_path, monkeypatch):
    """A shipped-model folder holding ``tiny_a`` (NLL 500) and ``tiny_b`` (NLL 400), and an
    empty runs folder."""
    folder = tmp_path / "shelf"
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "last.pt")
    for name, nll in (("tiny_a", 500.0), ("tiny_b", 400.0)):
        results = {**RESULTS, "test_nll_nats": nll}
        pretrained.write_pretrained(ckpt.build_model(), ckpt, folder / f"{name}.safetensors",
                                    results=results)  # fmt: skip
    monkeypatch.setattr(pretrained, "FOLDER", folder)
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "no_runs"))
    monkeypatch.chdir(tmp_path)
    return folder


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_listing_and_best(shelf, capsys):
    assert pretrained.names() == ["tiny_a", "tiny_b"]
    assert pretrained.best().name == "tiny_b"
    code, _, err = run(["pretrained"], capsys)
    assert code == 0 and "tiny_a" in err and "400.00 ± 1.50" in err and "1,234" in err


def test_listing_fits_80_columns_and_names_each_data_set_only_when_they_differ(
    shelf, tiny_run, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "80")
    code, _, err = run(["pretrained"], capsys)
    assert code == 0 and "test NLL in nats on binarized_mnist" in err
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "last.pt")
    results = {**RESULTS, "data": "cifar10 test"}
    pretrained.write_pretrained(ckpt.build_model(), ckpt, shelf / "tiny_c.safetensors",
                                results=results)  # fmt: skip
    code = main(["pretrained"])
    err = capsys.readouterr().err
    assert code == 0 and "on binarized_mnist" not in err
    rows = [line for line in err.splitlines() if line.lstrip().startswith("tiny_")]
    assert "binarized_mnist" in rows[0] and "cifar10" in rows[2]
    assert max(len(line.rstrip()) for line in err.splitlines()) <= 80


def test_eval_without_checkpoint_or_runs_uses_the_best_shipped_model(shelf, capsys):
    code, _, err = run(["eval", "--bits-per-dim", "--max-images", "8", "--no-progress"], capsys)
    assert code == 0, err
    assert "no runs under" in err and "shipped model tiny_b" in err and "bits/dim" in err


def test_complete_without_checkpoint_or_runs_uses_the_best_shipped_model(shelf, capsys):
    digit = load_split("binarized_mnist", "test")[0]
    save_image(digit, 2, shelf.parent / "img.png")
    code, _, err = run(["complete", "--occlude", "bottom-half", "img.png", "--samples", "2",
                        "--out", "done"], capsys)  # fmt: skip
    assert code == 0, err
    assert "shipped model tiny_b" in err
    assert (shelf.parent / "done" / "img_grid.png").is_file()
    for k in (1, 2):  # each completion keeps the known top half
        image, _ = load_image(shelf.parent / "done" / f"img_{k}.png", channels=1, levels=2)
        assert torch.equal(image[:, :14], digit[:, :14])


def test_sample_takes_a_shipped_name(shelf, capsys):
    code, _, err = run(["sample", "tiny_a", "-n", "2", "--out", "s.png"], capsys)
    assert code == 0, err
    assert "using the shipped model tiny_a" in err and (shelf.parent / "s.png").is_file()


def test_a_run_directory_of_the_same_name_takes_precedence(shelf, tiny_run, capsys):
    (shelf.parent / "tiny_a").symlink_to(tiny_run, target_is_directory=True)
    code, _, err = run(["sample", "tiny_a", "-n", "2", "--out", "s.png"], capsys)
    assert code == 0, err
    assert "using tiny_a (it exists here), not the shipped model tiny_a" in err


def test_export_needs_an_explicit_choice_but_takes_a_name(shelf, capsys):
    code, _, err = run(["export", "--format", "safetensors", "--out", "m.safetensors"], capsys)
    assert code == 1 and "no runs under" in err and "tiny_a, tiny_b" in err
    code, _, err = run(["export", "tiny_a", "--format", "safetensors", "--out", "m.safetensors",
                        "--batch", "2"], capsys)  # fmt: skip
    assert code == 0, err
    assert (shelf.parent / "m.safetensors").is_file()


def test_load_model_by_name_and_unknown_names(shelf):
    model = pixelgen.load_model("tiny_b")
    assert model.model_name == "pixelcnn" and not model.training
    with pytest.raises(CheckpointError, match=r"did you mean 'tiny_a'\?.*shipped models: tiny_a"):
        pixelgen.load_model("tiny_aa")


def test_a_corrupted_shipped_file_is_a_one_line_error_naming_it(shelf, capsys):
    path = shelf / "tiny_b.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # a bit of the last tensor's bytes
    path.write_bytes(bytes(data))
    code, _, err = run(["eval", "tiny_b", "--max-images", "4", "--no-progress"], capsys)
    assert code == 1 and str(path) in err and "checksum" in err and "\n" not in err.strip()


# The real shipped models: their state-dict names are an interface (a renamed module must
# keep loading them), and they still score what their metadata records.
SHIPPED = pretrained.names()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_scores_what_it_records(name):
    info = pretrained.find(name)
    ckpt = sources.read_shipped(info)  # strict: every stored name must fit the model
    model = ckpt.build_model()
    d = ckpt.recipe["data"]
    test = load_split(d["name"], "test")
    res = evaluate(model, test, batch_size=100, max_images=1000)
    assert res.nll_nats == pytest.approx(info.results["test_first_1000_nll_nats"], abs=1e-3)
    assert info.results["test_images"] == 10_000


def test_a_model_is_shipped():
    assert SHIPPED, "no pretrained model in src/pixelgen/pretrained/"


def test_listing_of_the_shipped_models_truncates_nothing_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, _, err = run(["pretrained"], capsys)
    assert code == 0 and "…" not in err
    for m in pretrained.shipped():
        assert m.name in err
    assert (_count(960_000), _count(1_500_000), _count(12_345_678)) == ("960k", "1.5M", "12.3M")

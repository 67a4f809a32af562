"""Pictures people can see: sample and completion grids enlarged (``--zoom``), captioned
completion grids, and a training curve in nats (2 levels) on round ticks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from pixelgen.cli import main
from pixelgen.images import completion_grid, grid_scale, occlusion_mask, save_image
from pixelgen.plots import nice_range, tick_label
from pixelgen.train import metrics

TINY = [
    *("--set", "model.hidden=4", "--set", "model.layers=1", "--set", "train.batch_size=4"),
    *("--set", "train.max_steps=2", "--set", "train.eval_max_images=8", "--set", "sample.n=2"),
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny 28x28 binarized-MNIST run, and what ``curve.png`` was drawn from."""
    run_dir = tmp_path_factory.mktemp("run") / "quick"
    curves = []
    real = metrics.plot_curves
    with pytest.MonkeyPatch.context() as mp:

        def spy(series, path, **kw):
            curves.append((series, kw))
            return real(series, path, **kw)

        mp.setattr(metrics, "plot_curves", spy)
        assert main(["train", "quick_rowlstm", *TINY, "--out", str(run_dir)]) == 0
    return run_dir, curves


def size_of(path):
    with Image.open(path) as img:
        return img.size


def test_sample_grid_is_enlarged_to_112_pixels_and_single_images_are_not(trained, tmp_path):
    run_dir, _ = trained
    grid, ims = tmp_path / "g.png", tmp_path / "ims"
    args = ["sample", str(run_dir), "-n", "2", "--nrow", "2", "--out", str(grid)]
    assert main([*args, "--out-dir", str(ims)]) == 0
    assert grid_scale((28, 28)) == 4
    assert size_of(grid) == (4 * (2 * 28 + 3 * 2), 4 * (28 + 2 * 2))  # 112 pixels a digit
    assert [size_of(p) for p in sorted(ims.iterdir())] == [(28, 28)] * 2


def test_sample_zoom(trained, tmp_path, capsys):
    run_dir, _ = trained
    grid = tmp_path / "g.png"
    args = ["sample", str(run_dir), "-n", "2", "--nrow", "2", "--out", str(grid), "--zoom", "1"]
    assert main(args) == 0
    assert size_of(grid) == (2 * 28 + 3 * 2, 28 + 2 * 2)
    assert "zoom 1x" in capsys.readouterr().err


@pytest.mark.parametrize(
    "zoom,code,message",
    [("0", 2, "--zoom"), ("two", 2, "--zoom"), ("100000", 2, "over Pillow's limit")],
)
def test_zoom_errors_are_one_line_before_the_work(trained, tmp_path, capsys, zoom, code, message):
    run_dir, _ = trained
    image = save_image(torch.zeros(1, 28, 28, dtype=torch.long), 2, tmp_path / "a.png")
    for args in (
        ["sample", str(run_dir), "--out", str(tmp_path / "g.png")],
        ["complete", "-c", str(run_dir), "--occlude", "center", str(image), "-o", str(tmp_path)],
    ):
        assert main([*args, "--zoom", zoom]) == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "a_grid.png").exists()


def test_zoom_is_documented(capsys):
    for command in ("sample", "complete"):
        assert main([command, "--help"]) == 0
        assert "--zoom" in capsys.readouterr().out


def _caption_rows(path, grid_height):
    """The rows above the images, as an array (none when the grid has no caption)."""
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"))
    return pixels[: pixels.shape[0] - grid_height]


def test_completion_grid_has_a_caption_row(trained, tmp_path):
    run_dir, _ = trained
    image = save_image(torch.ones(1, 28, 28, dtype=torch.long), 2, tmp_path / "a.png")
    out = tmp_path / "out"
    args = ["complete", "-c", str(run_dir), "--occlude", "bottom-half", "--samples", "2"]
    assert main([*args, "--out", str(out), str(image)]) == 0
    width, height = size_of(out / "a_grid.png")
    assert width == 4 * (4 * 28 + 5 * 2)  # original, occluded, 2 samples, at 4x
    caption = _caption_rows(out / "a_grid.png", 4 * (28 + 2 * 2))
    assert 10 <= len(caption) <= 24  # a thin row of text
    column = 4 * (28 + 2)  # each image with its padding
    for c in range(4):  # dark text over every column
        assert (caption[:, c * column : (c + 1) * column] < 100).any(), c
    assert size_of(out / "a_1.png") == (28, 28)
    # With --zoom 1 the columns are too narrow for the words: no caption.
    assert main([*args, "--out", str(tmp_path / "z"), "--zoom", "1", str(image)]) == 0
    assert size_of(tmp_path / "z" / "a_grid.png") == (4 * 28 + 5 * 2, 28 + 2 * 2)


def test_completion_grid_caption_names_the_columns(tmp_path):
    original = torch.ones(1, 28, 28, dtype=torch.long)
    hidden = occlusion_mask("bottom-half", (28, 28))
    filled = torch.zeros(3, 1, 28, 28, dtype=torch.long)
    plain = completion_grid(original, hidden, filled, 2, tmp_path / "p.png", scale=4, caption=False)
    captioned = completion_grid(original, hidden, filled, 2, tmp_path / "c.png", scale=4)
    (w, h), (cw, ch) = size_of(plain), size_of(captioned)
    assert cw == w and 10 <= ch - h <= 24
    with Image.open(plain) as a, Image.open(captioned) as b:
        below = np.asarray(b.convert("RGB"))[ch - h :]
        assert np.array_equal(below, np.asarray(a.convert("RGB")))  # the images, unchanged


def test_completion_grid_caption_takes_the_columns_names(tmp_path):
    original = torch.ones(1, 28, 28, dtype=torch.long)
    hidden = occlusion_mask("bottom-half", (28, 28))
    filled = torch.zeros(2, 1, 28, 28, dtype=torch.long)
    kw = {"scale": 4}
    default = completion_grid(original, hidden, filled, 2, tmp_path / "d.png", **kw)
    named = completion_grid(original, hidden, filled, 2, tmp_path / "n.png", **kw, names=["A", "B"])
    again = completion_grid(original, hidden, filled, 2, tmp_path / "a.png", **kw, names=["A", "B"])
    assert size_of(default) == size_of(named)
    with Image.open(default) as d, Image.open(named) as n, Image.open(again) as a:
        d, n, a = (np.asarray(im.convert("RGB")) for im in (d, n, a))
    column = 4 * (28 + 2)
    # The first two columns keep their names; the completions' are the ones given.
    assert np.array_equal(d[:10, : 2 * column], n[:10, : 2 * column])
    assert not np.array_equal(d[:10, 2 * column :], n[:10, 2 * column :])
    assert np.array_equal(n, a)


def test_curve_is_in_nats_for_two_level_data(trained):
    run_dir, curves = trained
    assert (run_dir / "curve.png").is_file() and curves
    series, kw = curves[-1]
    assert kw["ylabel"] == "nats"
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    valid = [(r["step"], r["nll_nats"]) for r in rows if r["split"] == "valid"]
    assert series["valid"] == valid


def test_curve_is_in_bits_per_dim_otherwise(tmp_path, monkeypatch):
    rows = [
        {"step": 10, "split": "train", "nll_nats": 9000.0, "bits_per_dim": 6.0},
        {"step": 200, "split": "train", "nll_nats": 5000.0, "bits_per_dim": 3.3},
        {"step": 200, "split": "valid", "nll_nats": 5100.0, "bits_per_dim": 3.4},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = {}
    monkeypatch.setattr(
        metrics, "plot_curves", lambda series, path, **kw: seen.update(kw, s=series)
    )
    metrics.plot(tmp_path, "cifar", levels=256)
    assert seen["ylabel"] == "bits/dim" and seen["s"]["valid"] == [(200, 3.4)]
    # The first steps' large losses (6.0) are above the range shown, which keeps the rest.
    assert seen["ylim"] == (3.3, 3.4)


def test_a_run_validated_only_at_its_end_shows_its_training_curve(tmp_path, monkeypatch):
    rows = [{"step": k, "split": "train", "nll_nats": y} for k, y in
            [(10, 300.0), (50, 150.0), (100, 110.0), (150, 104.0), (200, 100.0)]]  # fmt: skip
    rows.append({"step": 200, "split": "valid", "nll_nats": 101.0})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = {}
    monkeypatch.setattr(metrics, "plot_curves", lambda series, path, **kw: seen.update(kw))
    metrics.plot(tmp_path, "quick", levels=2)
    # from a tenth of the run (step 20) on: the first step's 300 is cut, the rest shown
    assert seen["ylim"] == (100.0, 150.0)


@pytest.mark.parametrize(
    "lo,hi,ticks",
    [
        (0, 37500, ["0", "10k", "20k", "30k", "40k"]),
        (85.2, 91.3, ["84", "86", "88", "90", "92"]),
        (0.151, 0.172, ["0.150", "0.155", "0.160", "0.165", "0.170", "0.175"]),
        (0, 600000, ["0", "100k", "200k", "300k", "400k", "500k", "600k"]),
        (0, 1500, ["0", "500", "1k", "1.5k"]),
    ],
)
def test_ticks_are_round(lo, hi, ticks):
    a, b, step = nice_range(lo, hi, target=6)
    # Not via floor(log10(step)): at an exact power of ten a SIMD log10 may give 4.999...
    assert any(math.isclose(step, m * 10.0**k) for m in (1, 2, 5) for k in range(-6, 9))
    assert [tick_label(a + k * step, step) for k in range(round((b - a) / step) + 1)] == ticks


def test_curve_png_ticks_are_drawn_from_nice_range(tmp_path, monkeypatch):
    from pixelgen import plots

    calls = []
    real = plots.nice_range
    monkeypatch.setattr(plots, "nice_range", lambda *a, **k: calls.append(a) or real(*a, **k))
    plots.plot_curves({"valid": [(100, 86.3), (37500, 91.7)]}, tmp_path / "c.png")
    assert len(calls) == 2  # x and y
    assert size_of(tmp_path / "c.png") == (720, 420)


def test_a_reference_line_is_dashed_in_the_colour_of_its_series(tmp_path):
    from pixelgen.plots import COLOURS, plot_curves

    series = {"a": [(0, 10.0), (100, 12.0)], "b": [(0, 14.0), (100, 13.0)],
              "ref a": [(0, 11.0), (100, 11.0)]}  # fmt: skip
    path = tmp_path / "c.png"
    plot_curves(series, path, colour_of={"ref a": 0}, dashed=["ref a"], ylim=(10.0, 14.0))
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)  # (H, W, 3)
    blue, third = np.array(COLOURS[0]), np.array(COLOURS[2])  # 'ref a' would get index 2

    def hits(colour):  # per row: pixels of that colour in the plot's left half
        return (np.abs(img[:, 60:300] - colour).sum(-1) == 0).sum(1)

    row = int(np.argmax(hits(blue)))  # the horizontal reference line
    assert not hits(third).any()  # no series drawn in the third colour
    # The reference row: blue pixels alternating with gaps, not one solid line.
    line = (np.abs(img[row, 60:300] - blue).sum(-1) == 0).astype(int)
    assert 0.3 < line.mean() < 0.7 and np.abs(np.diff(line)).sum() >= 10


@pytest.mark.parametrize(
    "lo,hi,labels",
    [
        (8.46e-10, 0.352, ("0.000", "0.352")),
        (2.1, 37.04, ("2.1", "37.0")),
        (0.0, 0.0, ("0.000", "0.000")),
        (150.0, 1234.5, ("150", "1234")),
    ],
)
def test_heat_map_bar_labels_share_the_top_precision(lo, hi, labels):
    from pixelgen.plots import bar_labels

    assert bar_labels(lo, hi) == labels

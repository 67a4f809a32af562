"""``pixelgen eval --report DIR``: the per-image and per-position NLL it rests on, and the
pictures and JSON it writes."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from conftest import tiny_model
from pixelgen.cli.app import main
from pixelgen.config import load_recipe
from pixelgen.data import load_split
from pixelgen.evaluate import evaluate
from pixelgen.train import train


def test_details_add_up_to_the_mean_nll():
    model = tiny_model("row_lstm", levels=2, hidden=4, layers=1)
    data = load_split("binarized_mnist", "test")
    res = evaluate(model, data, batch_size=7, max_images=20, details=True)
    assert res.per_image.shape == (20,) and res.per_position.shape == (28, 28)
    assert res.per_image.mean().item() == pytest.approx(res.nll_nats, rel=1e-12)
    assert res.per_position.sum().item() == pytest.approx(res.nll_nats, rel=1e-12)
    # each image's NLL is the one log_prob gives
    x = torch.stack([data[i] for i in range(3)]).long()
    assert torch.allclose(res.per_image[:3], -model.log_prob(x).double(), rtol=1e-9)


def test_eval_report_writes_pictures_and_json(tmp_path, capsys):
    tiny = ["model.hidden=4", "model.layers=1", "train.max_steps=2", "train.batch_size=4",
            "train.eval_every=2", "train.eval_max_images=4"]  # fmt: skip
    run = tmp_path / "run"
    train(load_recipe("quick_pixelcnn", tiny), run_dir=run, show_progress=False, log=print)
    out = tmp_path / "rep"
    args = ["eval", str(run), "--max-images", "50", "--report", str(out), "--no-progress"]
    assert main(args) == 0
    assert "report in" in capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert names == {"heatmap.png", "histogram.png", "most_likely.png", "least_likely.png",
                     "report.json"}  # fmt: skip
    with Image.open(out / "most_likely.png") as img:
        assert img.size == (4 * (8 * 28 + 9 * 2), 4 * (28 + 2 * 2))  # 8 digits, padding, at 4x
    rep = json.loads((out / "report.json").read_text())
    most = [r["nll_nats"] for r in rep["most_likely"]]
    least = [r["nll_nats"] for r in rep["least_likely"]]
    assert most == sorted(most) and least == sorted(least, reverse=True) and most[0] < least[0]
    grid = torch.tensor(rep["per_position_nll_nats"])
    assert grid.shape == (28, 28) and grid.sum().item() == pytest.approx(rep["nll_nats"])
    # the least likely image really has the largest NLL of the 50
    model_nll = [r["nll_nats"] for r in rep["least_likely"]][0]
    assert model_nll >= rep["nll_nats"]


def test_eval_takes_its_defaults_from_the_recipe_and_the_command_line_wins(tmp_path, capsys):
    tiny = ["model.hidden=4", "model.layers=1", "train.max_steps=1", "train.batch_size=4",
            "train.eval_every=1", "train.eval_max_images=4", "eval.split=valid",
            "eval.max_images=12", "eval.batch_size=5"]  # fmt: skip
    run = tmp_path / "run"
    train(load_recipe("quick_pixelcnn", tiny), run_dir=run, show_progress=False, log=print)
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "-", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["split"], report["num_images"]) == ("valid", 12)
    assert main(["eval", str(run), "--json", "-", "--no-progress", "--split", "test",
                 "--max-images", "5"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert (report["split"], report["num_images"]) == ("test", 5)


class _Constant(torch.nn.Module):
    """Logits that do not depend on the image: ``value`` everywhere."""

    def __init__(self, levels: int, value: float = 0.0) -> None:
        super().__init__()
        self.levels, self.channels, self.value = levels, 1, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return torch.full((b, self.levels, c, h, w), self.value, dtype=torch.float64)


def test_a_uniform_model_scores_exactly_log_levels_per_value():
    import math

    data = load_split("binarized_mnist", "test")
    res = evaluate(_Constant(2), data, batch_size=50, max_images=100)
    assert res.nll_nats == pytest.approx(784 * math.log(2), rel=1e-12)
    assert res.bits_per_dim == pytest.approx(1.0, rel=1e-12) and res.nll_nats_stderr < 1e-9


def test_evaluate_matches_an_independent_sum_and_standard_error():
    import math

    model = tiny_model("pixelcnn", levels=2, hidden=4, layers=1, seed=3)
    data = load_split("binarized_mnist", "test")
    x = torch.stack([data[i] for i in range(30)]).long()
    nll = -model.log_prob(x).double()  # (30,)
    res = evaluate(model, data, batch_size=7, max_images=30)
    assert res.nll_nats == pytest.approx(nll.mean().item(), rel=1e-9)
    stderr = nll.std(unbiased=True).item() / math.sqrt(30)
    assert res.nll_nats_stderr == pytest.approx(stderr, rel=1e-6)


def test_a_non_finite_model_is_refused():
    from pixelgen.errors import DataError

    data = load_split("binarized_mnist", "test")
    with pytest.raises(DataError, match="do not sum to 1"):
        evaluate(_Constant(2, float("nan")), data, max_images=4)

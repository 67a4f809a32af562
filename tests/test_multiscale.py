"""The Multi-Scale PixelRNN (§3.5): exact normalization, the order of its values, the
condition as the only path of the small image, two-stage generation, checkpoints,
exports, recipes and the eval report's parts.

Values are indexed in raster-then-channel order, ``p = (i * W + j) * C + c``; the model's
own order is the grid pixels first, then the rest (``models/multiscale.py``).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import pixelgen
from conftest import assert_steps_match_forward, dependency_matrix, finish_tiny
from pixelgen.errors import ConditionError, ConfigError
from pixelgen.sampling import complete, sample

PARTS = {
    "pixelcnn": {"hidden": 6, "layers": 2},
    "row_lstm": {"hidden": 6, "layers": 2},
    "diagonal_bilstm": {"hidden": 6, "layers": 2},
    "gated_pixelcnn": {"hidden": 6, "layers": 2},
}


def tiny_multiscale(
    small: str = "pixelcnn",
    large: str = "row_lstm",
    *,
    channels: int = 1,
    levels: int = 2,
    factor: int = 2,
    seed: int = 0,
    random_biases: bool = True,
    hidden: int | None = None,
) -> torch.nn.Module:
    """A float64 multi-scale model of two tiny parts; random biases as in ``tiny_model``
    (zero biases would hide a lost one), off for the dependence tests."""
    torch.manual_seed(seed)
    spec = {
        name: {**PARTS[name], **({"hidden": hidden} if hidden else {})} for name in {small, large}
    }
    model = pixelgen.create_model(
        "multiscale",
        channels=channels,
        levels=levels,
        factor=factor,
        small={"name": small, **spec[small]},
        large={"name": large, **spec[large]},
        condition_maps=3,
        upsample_hidden=5,
    )
    return finish_tiny(model, seed, random_biases)


def all_images(channels: int, levels: int, h: int, w: int) -> torch.Tensor:
    """Every image once, ``(levels ** (C H W), C, H, W)``."""
    n = channels * h * w
    images = torch.tensor(list(itertools.product(range(levels), repeat=n)))
    return images.view(-1, h, w, channels).permute(0, 3, 1, 2)


def total_probability(model, images: torch.Tensor, batch: int = 8192) -> float:
    with torch.no_grad():
        logp = torch.cat([model.log_prob(x) for x in images.split(batch)])
    return torch.logsumexp(logp, dim=0).exp().item()


# ---------------------------------------------------------------------------- the likelihood


@pytest.mark.parametrize(
    "small,large,channels,levels,size,factor",
    [
        ("pixelcnn", "row_lstm", 1, 2, (2, 2), 2),  # s = 1: 16 images
        ("row_lstm", "diagonal_bilstm", 3, 2, (2, 2), 2),  # 3 colours: 4,096 images
        ("gated_pixelcnn", "pixelcnn", 1, 2, (4, 4), 2),  # s = 2: 65,536 images
        ("diagonal_bilstm", "gated_pixelcnn", 1, 3, (3, 2), 2),  # a cut block: 729 images
    ],
)
def test_probabilities_of_all_images_sum_to_one(small, large, channels, levels, size, factor):
    model = tiny_multiscale(small, large, channels=channels, levels=levels, factor=factor)
    images = all_images(channels, levels, *size)
    assert len(images) == levels ** (channels * size[0] * size[1])
    assert abs(total_probability(model, images) - 1.0) < 1e-6


def test_the_sum_test_fails_for_a_broken_model():
    """Not vacuous: scoring the large model on the grid too, or a large model whose
    input mask sees the current pixel, gives a total away from 1 by far more than the
    tolerance above."""
    model = tiny_multiscale("pixelcnn", "row_lstm")
    images = all_images(1, 2, 2, 2)

    def large_everywhere(x, cond=None):
        sub = model.subsample(x)
        return model.large(x, model.condition(sub, x.shape[-2:]))

    with torch.no_grad():
        logp = -F.cross_entropy(large_everywhere(images), images, reduction="none").sum((1, 2, 3))
        small = model.small.log_prob(model.subsample(images))
    assert abs(torch.logsumexp(logp + small, 0).exp().item() - 1.0) > 1e-2
    with torch.no_grad():
        model.large.input_conv.mask.fill_(1.0)  # mask A now lets each pixel see itself
    assert abs(total_probability(model, images) - 1.0) > 1e-4


def test_log_prob_is_small_on_the_grid_plus_large_off_it():
    model = tiny_multiscale("row_lstm", "pixelcnn", channels=3, levels=4)
    x = torch.randint(0, 4, (3, 3, 5, 6))
    grid = model.grid(5, 6)
    with torch.no_grad():
        sub = x[..., ::2, ::2]
        small = model.small.log_prob(sub)
        logits = model.large(x, model.condition(sub, (5, 6)))
        values = -F.cross_entropy(logits, x, reduction="none")  # (B, C, H, W)
        large = (values * ~grid).sum((1, 2, 3))
        torch.testing.assert_close(model.log_prob(x), small + large, rtol=0, atol=1e-10)
        assert model(x).shape == (3, 4, 3, 5, 6)
    assert grid.sum() == 3 * 3 and grid[0, 0] and grid[4, 4] and not grid[1, 0]


def test_gradients_reach_every_part():
    model = tiny_multiscale("pixelcnn", "diagonal_bilstm", channels=3, levels=4).float().train()
    x = torch.randint(0, 4, (2, 3, 6, 6))
    (-model.log_prob(x).mean()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


# ---------------------------------------------------------------------------- the order


def _union_dependencies(model, channels: int, size, images: int = 3) -> torch.Tensor:
    """A ReLU that is off for one image hides a path; the union over images does not."""
    torch.manual_seed(7)
    return sum(
        dependency_matrix(model, torch.randint(0, model.levels, (1, channels, *size))).int()
        for _ in range(images)
    ).bool()


def _on_grid(channels: int, size, factor: int) -> torch.Tensor:
    """``(P,)`` bool: which values are pixels of the small image."""
    rows, cols = torch.arange(size[0]) % factor == 0, torch.arange(size[1]) % factor == 0
    grid = rows[:, None] & cols[None, :]  # (H, W)
    return grid.flatten().repeat_interleave(channels)


@pytest.mark.parametrize("channels", [1, 3])
def test_values_follow_the_multiscale_order(channels):
    """Grid values see only earlier grid values (in raster order, which is the small
    image's); every other value sees only earlier values and the grid, and all of the
    grid (through the condition), later grid pixels included."""
    size, factor = (6, 6), 2
    model = tiny_multiscale(
        "row_lstm", "diagonal_bilstm", channels=channels, levels=3, factor=factor,
        hidden=4 * channels, random_biases=False,
    )  # fmt: skip
    dep = _union_dependencies(model, channels, size)  # (P, Q)
    grid = _on_grid(channels, size, factor)
    order = torch.arange(dep.shape[0])
    earlier = order[:, None] < order[None, :]  # p before q
    allowed = torch.where(grid[None, :], earlier & grid[:, None], earlier | grid[:, None])
    leaks = (dep & ~allowed).nonzero().tolist()
    assert not leaks, f"a value depends on one it may not see: {leaks[:5]}"
    # Not vacuous: each value off the grid sees the grid pixel of the block below its
    # own, which comes later (through the condition), and most earlier values.
    h, w = size
    for i, j, c in itertools.product(range(h - factor), range(w), range(channels)):
        if i % factor or j % factor:
            below = ((i // factor + 1) * factor * w + j // factor * factor) * channels
            assert dep[below : below + channels, (i * w + j) * channels + c].all(), (i, j, c)
    assert dep[earlier & ~grid[:, None] & ~grid[None, :]].float().mean() > 0.5


def test_the_small_image_reaches_the_large_model_only_through_the_condition():
    """With the condition held fixed, the large model is causal in raster order: a grid
    value later than q changes q only through the condition; and the large model's
    context in the pixels is the same whatever the condition holds."""
    size = (6, 6)
    model = tiny_multiscale("pixelcnn", "row_lstm", levels=3, hidden=6, random_biases=False)

    class Large(torch.nn.Module):
        """The large model with its condition held fixed."""

        levels = 3

        def __init__(self, fixed: torch.Tensor) -> None:
            super().__init__()
            self.fixed = fixed  # (1, c, H, W)

        def forward(self, images):
            return model.large(images, self.fixed.expand(len(images), -1, -1, -1))

    deps = []
    for seed in (1, 2):
        fixed = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))
        deps.append(_union_dependencies(Large(fixed.double()), 1, size))
    order = torch.arange(deps[0].shape[0])
    assert not (deps[0] & (order[:, None] >= order[None, :])).any()
    assert torch.equal(deps[0], deps[1])
    # Not vacuous: the full model does let q see later grid values, by the condition.
    full = _union_dependencies(model, 1, size)
    later_grid = (order[:, None] > order[None, :]) & _on_grid(1, size, 2)[:, None]
    assert full[later_grid].any() and not deps[0][later_grid].any()


def test_no_outside_condition_and_bad_hyperparameters():
    model = tiny_multiscale()
    x = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    with pytest.raises(ConditionError, match="takes no condition"):
        model(x, torch.zeros(1, 3, 4, 4))
    spec = {"small": {"name": "pixelcnn"}, "large": {"name": "row_lstm"}}
    with pytest.raises(ConditionError, match="model.condition: the multiscale model takes no"):
        pixelgen.create_model("multiscale", cond_channels=10, **spec)  # model.condition: class
    cases = [
        ({"factor": 1}, "model.factor: must be >= 2, got 1"),
        ({"small": {"name": "pixelcnn", "hiden": 3}}, "model.small.hiden: unknown key"),
        ({"large": {"name": "row_lstn"}}, "model.large.name: unknown model 'row_lstn'"),
        ({"large": {"name": "multiscale"}}, "a composite model cannot be a part"),
        ({"small": {"name": "pixelcnn", "levels": 4}}, "model.small.levels: set by the"),
        ({"small": {"name": "pixelcnn", "cond_channels": 4}}, "model.small.cond_channels"),
        ({"large": {"name": "pixelcnn", "layers": 0}}, "model.large.layers: must be >= 1"),
        ({"small": [1]}, "model.small: expected a mapping"),
    ]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            pixelgen.create_model("multiscale", **{**spec, **change})


# ---------------------------------------------------------------------------- generation


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def recorder():
    steps = []
    return steps, lambda i, j, c, logits: steps.append((i, j, c, logits.clone()))


@pytest.mark.parametrize(
    "small,large,channels,size",
    [
        ("pixelcnn", "row_lstm", 1, (6, 5)),
        ("row_lstm", "diagonal_bilstm", 3, (4, 4)),
        ("diagonal_bilstm", "gated_pixelcnn", 1, (5, 6)),
        ("gated_pixelcnn", "pixelcnn", 3, (4, 5)),
    ],
)
def test_fast_equals_naive_and_every_draw_is_exact(small, large, channels, size):
    model = tiny_multiscale(small, large, channels=channels, levels=4, seed=1)
    steps, hook = recorder()
    rows = []
    fast = sample(
        model, 3, size, generator=gen(7), on_logits=hook, progress=lambda i, n: rows.append((i, n))
    )
    naive = sample(model, 3, size, generator=gen(7), method="naive")
    assert fast.shape == (3, channels, *size) and torch.equal(fast, naive)
    assert_steps_match_forward(model, fast, steps)
    assert len(steps) >= channels * size[0] * size[1]
    total = (size[0] + 1) // 2 + size[0]  # the small image's rows, then the full image's
    assert rows[-1] == (total, total) and len(rows) == total
    assert len(fast.unique()) > 1
    # the model's own method is the same sampler
    assert torch.equal(model.sample(3, size, generator=gen(7)), fast)


@pytest.mark.parametrize("mode", ["bottom-half", "random:0.5", "center"])
def test_completion_keeps_known_values_and_draws_the_grid_first(mode):
    from pixelgen.images import occlusion_mask

    model = tiny_multiscale("row_lstm", "pixelcnn", channels=3, levels=4, seed=2)
    size = (6, 6)
    x = torch.randint(0, 4, (2, 3, *size), generator=gen(3))
    known = ~occlusion_mask(mode, size, seed=1)  # (H, W)
    steps, hook = recorder()
    fast = complete(model, x, known, generator=gen(5), on_logits=hook)
    naive = complete(model, x, known, generator=gen(5), method="naive")
    k = known.expand_as(x)
    assert torch.equal(fast[k], x[k]) and torch.equal(fast, naive)
    assert not torch.equal(fast, x)
    assert_steps_match_forward(model, fast, steps, known=known)
    # The unknown grid pixels are drawn before any value off the grid.
    grid = model.grid(*size)
    first_off_grid = next(n for n, (i, j, _, _) in enumerate(steps) if not grid[i, j])
    assert all(grid[i, j] for i, j, _, _ in steps[:first_off_grid])
    assert not any(grid[i, j] for i, j, _, _ in steps[first_off_grid:])
    # per-value knowledge (some colours of a pixel known) works the same
    per_value = torch.rand(2, 3, *size, generator=gen(2)) < 0.5
    some = complete(model, x, per_value, generator=gen(3))
    assert torch.equal(some[per_value], x[per_value])
    assert torch.equal(some, model.complete(x, per_value, generator=gen(3), method="naive"))


def test_samples_follow_the_exact_distribution():
    """20,000 samples of a 2x2 binary model (s = 1: 16 images) against the exact
    probabilities (chi-square, p > 1e-3)."""
    model = tiny_multiscale("pixelcnn", "row_lstm", levels=2, seed=3)
    images = all_images(1, 2, 2, 2)  # (16, 1, 2, 2)
    with torch.no_grad():
        p = model.log_prob(images).exp()
    x = sample(model, 20_000, (2, 2), generator=gen(9))
    code = (x.flatten(1) * (2 ** torch.arange(3, -1, -1))).sum(1)  # image index
    counts = torch.bincount(code, minlength=16).double()
    expected = p * len(x)
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert expected.min() > 5
    # 15 degrees of freedom: P(chi2 > 37.7) = 1e-3
    assert chi2 < 37.7, (counts, expected)
    with pytest.raises(ConditionError, match="takes no condition"):
        sample(model, 1, (2, 2), cond=torch.tensor([1]))


# ---------------------------------------------------------------------------- the tools


def _images(x: torch.Tensor, levels: int):
    """A split of the images ``x`` ``(N, C, H, W)``, as ``pixelgen.data`` gives them."""
    from pixelgen.data.base import ArrayImageSet

    _, c, h, w = x.shape
    return ArrayImageSet(
        x.numpy().astype("uint8"), name="random", split="test", channels=c, height=h, width=w,
        levels=levels, description="random images", sources=[],
    )  # fmt: skip


def test_eval_gives_both_parts_and_they_add_up_to_the_total():
    from pixelgen.evaluate import evaluate

    model = tiny_multiscale("pixelcnn", "row_lstm", channels=3, levels=4)
    x = torch.randint(0, 4, (10, 3, 5, 4), generator=gen(1))
    res = evaluate(model, _images(x, 4), batch_size=4)
    small, large = res.parts["small"], res.parts["large"]
    assert small["dims"] == 3 * 3 * 2 and large["dims"] == 3 * 20 - small["dims"]
    assert small["nll_nats"] + large["nll_nats"] == pytest.approx(res.nll_nats, rel=1e-12)
    with torch.no_grad():
        expected = -model.small.log_prob(x[..., ::2, ::2]).mean().item()
    assert small["nll_nats"] == pytest.approx(expected, rel=1e-10)
    assert large["bits_per_dim"] == pytest.approx(
        large["nll_nats"] / (large["dims"] * 0.6931471805599453)
    )
    assert res.as_dict()["parts"] == res.parts
    single = evaluate(pixelgen.create_model("pixelcnn", channels=3, levels=4), _images(x, 4))
    assert single.parts is None and "parts" not in single.as_dict()


@pytest.fixture
def ckpt(tmp_path):
    """A float32 multiscale checkpoint in a run directory, 8x8 binary images."""
    from pixelgen.checkpoint import Checkpoint, save_checkpoint

    model = tiny_multiscale("row_lstm", "pixelcnn", levels=2, seed=4).float()
    path = tmp_path / "runs" / "ms" / "checkpoints" / "last.pt"
    save_checkpoint(
        path,
        Checkpoint(
            "multiscale",
            hparams=model.hparams,
            weights=model.state_dict(),
            recipe={"sample": {"n": 2, "seed": 3}},
            data={"height": 8, "width": 8, "levels": 2, "channels": 1},
        ),
    )
    return path, model


def test_the_checkpoint_describes_both_parts(ckpt):
    from pixelgen.checkpoint import load_checkpoint

    path, model = ckpt
    loaded = load_checkpoint(path)
    assert loaded.model_name == "multiscale" and loaded.hparams == model.hparams
    assert loaded.hparams["small"]["name"] == "row_lstm" and "hidden" in loaded.hparams["large"]
    rebuilt = loaded.build_model()
    x = torch.randint(0, 2, (3, 1, 8, 8))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("fmt", ["safetensors", "torchscript", "onnx"])
def test_export_round_trips(tmp_path, ckpt, fmt):
    """Every format: the program from images to the two-part logits (the condition is
    made inside it), for any batch size (the export check also runs a single image)."""
    from pixelgen.export import export_checkpoint, load_exported

    path, model = ckpt
    out = tmp_path / f"m.{'ts' if fmt == 'torchscript' else fmt}"
    report = export_checkpoint(path, fmt, out, batch=3)
    assert report.max_abs_diff is not None and report.max_abs_diff <= report.bound
    x = torch.randint(0, 2, (2, 1, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(load_exported(out)(x), model(x), rtol=0, atol=1e-4)
    if fmt == "safetensors":  # the rebuilt model generates like the checkpoint's
        again = pixelgen.load_model(out)
        assert torch.equal(
            again.sample(2, (8, 8), generator=gen(1)), model.sample(2, (8, 8), generator=gen(1))
        )


def test_sample_and_complete_from_the_command_line(tmp_path, ckpt, capsys):
    from pixelgen.cli.app import main
    from pixelgen.images import load_image, save_image

    path, model = ckpt
    grid, out_dir = tmp_path / "grid.png", tmp_path / "ims"
    args = ["sample", str(path), "-n", "3", "--out", str(grid), "--out-dir", str(out_dir)]
    assert main(args) == 0 and grid.exists()
    first = load_image(out_dir / "sample_1.png", channels=1, levels=2)[0]
    assert torch.equal(first, model.sample(3, (8, 8), generator=gen(3))[0])
    image = tmp_path / "digit.png"
    x = (torch.rand(1, 8, 8, generator=gen(2)) < 0.5).long()
    save_image(x, 2, image)
    args = ["complete", "-c", str(path), "--occlude", "bottom-half", str(image)]
    assert main([*args, "--samples", "2", "--out", str(tmp_path / "c")]) == 0
    done = load_image(tmp_path / "c" / "digit_1.png", channels=1, levels=2)[0]
    assert torch.equal(done[:, :4], x[:, :4])
    capsys.readouterr()


def test_shipped_recipes_and_nested_overrides():
    from pixelgen.config import load_recipe, recipe_schema
    from test_config import _conforms

    r = load_recipe("quick_multiscale", ["model.small.hidden=8", "model.large.layers=1"])
    kw = r.model.kwargs()
    assert (kw["factor"], kw["small"]["hidden"], kw["large"]["layers"]) == (2, 8, 1)
    assert kw["small"]["state_kernel"] == 3  # every default filled in
    with pytest.raises(ConfigError, match=r"--set 'model.small.hiden=8': model.small.hiden"):
        load_recipe("quick_multiscale", ["model.small.hiden=8"])
    with pytest.raises(ConfigError, match="model.factor: is not a model part"):
        load_recipe("quick_multiscale", ["model.factor.x=1"])
    big = load_recipe("imagenet64_multiscale").model.kwargs()
    assert big["factor"] == 2 and big["small"]["layers"] == big["large"]["layers"] == 12
    schema = recipe_schema()
    parts = {"small": {"name": "pixelcnn"}, "large": {"name": "row_lstm"}}
    raw = {"model": {"name": "multiscale", **parts}, "data": {"name": "binarized_mnist"},
           "train": {"max_steps": 1}}  # fmt: skip
    assert _conforms(raw, schema, schema)
    raw["model"]["small"]["hiden"] = 3
    assert not _conforms(raw, schema, schema)


def test_train_and_eval_a_shipped_recipe_end_to_end(tmp_path):
    """The training loop optimizes the total (the one logit tensor); validation records
    and the eval report give both parts."""
    import json

    from pixelgen.config import load_recipe
    from pixelgen.report import evaluate_checkpoint
    from pixelgen.train import train

    tiny = ["model.small.hidden=4", "model.small.layers=1", "model.large.hidden=4",
            "model.large.layers=1", "model.condition_maps=2", "model.upsample_hidden=4",
            "train.batch_size=4", "train.max_steps=2", "train.eval_every=2",
            "train.eval_max_images=8", "eval.batch_size=8", "sample.n=2"]  # fmt: skip
    result = train(
        load_recipe("quick_multiscale", tiny), run_dir=tmp_path / "run", show_progress=False,
        log=lambda *_: None,
    )  # fmt: skip
    assert result.step == 2
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    valid = [r for r in records if r["split"] == "valid"][-1]
    assert set(valid["parts"]) == {"small", "large"}
    assert sum(valid["parts"].values()) == pytest.approx(valid["nll_nats"], rel=1e-9)
    report = evaluate_checkpoint(result.run_dir, max_images=8, show_progress=False, log=None)
    assert report["model"]["name"] == "multiscale" and report["parts"]["small"]["dims"] == 196
    parts = report["parts"]
    assert parts["small"]["nll_nats"] + parts["large"]["nll_nats"] == pytest.approx(
        report["nll_nats"], rel=1e-9
    )

"""Exact generation (§2): the fast steppers against the naive reference, completion,
the sampled distribution, temperature, and the randomness helpers."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

import pixelgen
from conftest import assert_steps_match_forward, tiny_model
from pixelgen.errors import ConfigError, ImageError
from pixelgen.images import occlusion_mask
from pixelgen.models.pixelcnn import PixelCNN
from pixelgen.sampling import complete, draw_uniforms, inverse_cdf, sample
from pixelgen.sampling.stepper import fast_stepper

MODELS = pixelgen.list_models()
# Non-default wiring and kernels, so a stepper that hard-codes the defaults fails.
VARIANTS = {
    "pixelcnn": {"kernel": 5, "input_kernel": 5, "residual": False},
    "row_lstm": {"input_state_kernel": 5, "state_kernel": 5, "skip": False},
    "diagonal_bilstm": {"residual": False, "input_kernel": 3},
    "gated_pixelcnn": {"kernel": 5, "input_kernel": 5, "skip": False},
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def recorder():
    steps: list[tuple[int, int, int, torch.Tensor]] = []
    return steps, lambda i, j, c, logits: steps.append((i, j, c, logits.clone()))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("variant", [False, True])
def test_fast_equals_naive_and_logits_are_exact(name, channels, variant, scan_path):
    """Both bodies of a stepper: the native one (nn/csrc/steppers.cpp) and Python's."""
    kw = VARIANTS[name] if variant else {}
    model = tiny_model(name, channels=channels, levels=4, hidden=9, layers=3, seed=1, **kw)
    size = (5, 6) if channels == 3 else (6, 3)
    steps, hook = recorder()
    fast = sample(model, 3, size, generator=gen(7), on_logits=hook)
    naive = sample(model, 3, size, generator=gen(7), method="naive")
    assert fast.dtype == torch.long and fast.shape == (3, channels, *size)
    assert torch.equal(fast, naive)
    assert len(steps) == channels * size[0] * size[1]
    assert_steps_match_forward(model, fast, steps)
    # The samples are not trivially constant: the test could catch a wrong image.
    assert len(fast.unique()) > 1


@pytest.mark.parametrize("name", MODELS)
def test_fast_equals_naive_on_one_pixel_wide_or_high_images(name, scan_path):
    """Degenerate rows and columns: one column (windows and row scans wider than the
    image), one row (nothing above), 1 and 9 images (the native loops and tiles)."""
    model = tiny_model(name, channels=3, levels=4, hidden=6, layers=2, seed=2)
    for batch, size in ((1, (4, 1)), (9, (1, 4)), (9, (3, 1))):
        steps, hook = recorder()
        fast = sample(model, batch, size, generator=gen(5), on_logits=hook)
        assert torch.equal(fast, sample(model, batch, size, generator=gen(5), method="naive"))
        assert_steps_match_forward(model, fast, steps)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kw", [{}, VARIANTS["diagonal_bilstm"]])
def test_diagonal_bilstm_complete_context_fast_equals_naive(channels, kw):
    """The first layer's right-to-left scan also reads the raw row above."""
    model = tiny_model(
        "diagonal_bilstm", channels=channels, levels=4, hidden=9, layers=3, seed=1,
        complete_context=True, **kw,
    )  # fmt: skip
    size = (5, 6) if channels == 3 else (6, 3)
    steps, hook = recorder()
    fast = sample(model, 3, size, generator=gen(7), on_logits=hook)
    naive = sample(model, 3, size, generator=gen(7), method="naive")
    assert torch.equal(fast, naive)
    assert len(steps) == channels * size[0] * size[1]
    assert_steps_match_forward(model, fast, steps)
    assert len(fast.unique()) > 1


def check_completion(model, mode: str, channels: int, size) -> torch.Tensor:
    """Completion under an occlusion mode keeps every known value, draws the rest, equals
    naive completion, and each step's logits are those of a full forward pass. Returns
    the input it completed."""
    x = torch.randint(0, 4, (2, channels, *size), generator=gen(3))
    known = ~occlusion_mask(mode, size, seed=1)  # (H, W), broadcast over batch and colours
    steps, hook = recorder()
    fast = complete(model, x, known, generator=gen(5), on_logits=hook)
    naive = complete(model, x, known, generator=gen(5), method="naive")
    k = known.expand_as(x)
    assert torch.equal(fast[k], x[k])
    assert torch.equal(fast, naive)
    assert not torch.equal(fast, x)  # something was drawn
    assert_steps_match_forward(model, fast, steps, known=known)
    return x


@pytest.mark.parametrize("mode", ["bottom-half", "right-half", "random:0.4"])
def test_diagonal_bilstm_complete_context_completion(mode):
    channels, size = (3, (4, 5)) if mode == "random:0.4" else (1, (5, 4))
    model = tiny_model(
        "diagonal_bilstm", channels=channels, levels=4, hidden=6, seed=2, complete_context=True
    )
    x = check_completion(model, mode, channels, size)
    per_value = torch.rand(2, channels, *size, generator=gen(2)) < 0.5  # some colours known
    fast = complete(model, x, per_value, generator=gen(3))
    assert torch.equal(fast[per_value], x[per_value])
    assert torch.equal(fast, complete(model, x, per_value, generator=gen(3), method="naive"))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_fast_equals_naive_at_28x28(name, scan_path):
    """At the size people train on: the 7x7 input window and every cached row or
    diagonal then fit inside the image, which the small cases above never reach."""
    model = tiny_model(name, channels=1, levels=2, hidden=8, layers=2, seed=2)
    steps, hook = recorder()
    fast = sample(model, 2, (28, 28), generator=gen(11), on_logits=hook)
    naive = sample(model, 2, (28, 28), generator=gen(11), method="naive")
    assert torch.equal(fast, naive)
    assert_steps_match_forward(model, fast, steps)
    assert 0.02 < fast.float().mean() < 0.98  # not a constant image


@pytest.mark.parametrize("name", MODELS)
def test_float32_model_samples_in_its_dtype(name):
    model = tiny_model(name, channels=3, levels=5, hidden=6).float()
    steps, hook = recorder()
    x = sample(model, 2, (3, 4), generator=gen(), on_logits=hook)
    assert steps[0][3].dtype == torch.float32
    full = model(x)
    for i, j, c, logits in steps:
        torch.testing.assert_close(logits, full[:, :, c, i, j], rtol=1e-4, atol=1e-4)


MODES = ["bottom-half", "top-half", "right-half", "left-half", "center", "random:0.4"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", MODES)
def test_complete_keeps_known_values_and_agrees_with_naive(name, mode):
    channels, size = (3, (4, 5)) if mode in ("center", "random:0.4") else (1, (5, 4))
    model = tiny_model(name, channels=channels, levels=4, hidden=6, seed=2)
    check_completion(model, mode, channels, size)


@pytest.mark.parametrize("name", MODELS)
def test_complete_with_per_value_known_mask(name):
    # Some colours of a pixel known, others not (e.g. only G known): the fast stepper must
    # still skip and revisit the pixel correctly.
    model = tiny_model(name, channels=3, levels=3, hidden=6, seed=4)
    x = torch.randint(0, 3, (2, 3, 4, 3), generator=gen(1))
    known = torch.rand(2, 3, 4, 3, generator=gen(2)) < 0.5
    fast = complete(model, x, known, generator=gen(3))
    assert torch.equal(fast[known], x[known])
    assert torch.equal(fast, complete(model, x, known, generator=gen(3), method="naive"))


def test_complete_does_not_modify_its_input():
    model = tiny_model("row_lstm")
    x = torch.randint(0, 4, (1, 1, 3, 3))
    before = x.clone()
    complete(model, x, torch.zeros(1, dtype=torch.bool), generator=gen())
    assert torch.equal(x, before)


@pytest.mark.parametrize("name", MODELS)
def test_sampling_leaves_the_model_unchanged(name):
    """One image one pixel wide too, where a broadcast of a bias is already contiguous
    (the steppers' row caches are updated in place and must never be the weights)."""
    model = tiny_model(name, channels=3, levels=4, hidden=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for batch, size in ((1, (3, 1)), (2, (3, 4))):
        sample(model, batch, size, generator=gen(1))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def all_images(levels: int, channels: int, size: tuple[int, int]) -> torch.Tensor:
    n = channels * size[0] * size[1]
    grid = torch.tensor(list(itertools.product(range(levels), repeat=n)))
    return grid.view(-1, channels, *size)


@pytest.mark.parametrize("name", MODELS)
def test_samples_follow_the_model_distribution(name):
    """Chi-square goodness of fit of 20,000 fast samples of a 2x2, 3-level model (81
    images) against exp(log_prob)."""
    model = tiny_model(name, channels=1, levels=3, hidden=6, seed=3)
    with torch.no_grad():  # sharper conditionals, so ignoring context would show
        model.head.out.weight.mul_(4.0)
    images = all_images(3, 1, (2, 2))  # (81, 1, 2, 2)
    with torch.no_grad():
        p = model.log_prob(images).exp()
    assert abs(float(p.sum()) - 1.0) < 1e-9
    n = 20_000
    x = sample(model, n, (2, 2), generator=gen(11))
    index = (x.view(n, 4) * torch.tensor([27, 9, 3, 1])).sum(1)  # row-major base 3
    counts = torch.bincount(index, minlength=81).double()
    expected = n * p
    assert expected.min() > 5  # the chi-square approximation holds
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = torch.tensor(80.0, dtype=torch.float64)
    p_value = float(torch.special.gammaincc(dof / 2, chi2 / 2))
    assert p_value > 1e-3, f"chi2 = {float(chi2):.1f} on 80 dof"


@pytest.mark.parametrize("name", MODELS)
def test_tiny_temperature_follows_the_argmax_path(name):
    model = tiny_model(name, channels=3, levels=4, hidden=6, seed=5)
    size = (3, 3)
    greedy = torch.zeros(1, 3, *size, dtype=torch.long)
    with torch.no_grad():
        for i, j, c in itertools.product(range(3), range(3), range(3)):
            greedy[0, c, i, j] = model(greedy)[0, :, c, i, j].argmax()
    x = sample(model, 8, size, generator=gen(), temperature=1e-4)
    assert torch.equal(x, greedy.expand_as(x))
    # ...whereas at temperature 1 the batch is not all on that path.
    assert not torch.equal(sample(model, 8, size, generator=gen()), greedy.expand_as(x))


def test_same_seed_same_images_different_seed_different():
    model = tiny_model("pixelcnn", levels=4)
    a = sample(model, 4, (4, 4), generator=gen(1))
    assert torch.equal(a, sample(model, 4, (4, 4), generator=gen(1)))
    assert not torch.equal(a, sample(model, 4, (4, 4), generator=gen(2)))


def test_model_methods_delegate():
    model = tiny_model("diagonal_bilstm", channels=3, levels=4)
    a = model.sample(2, (3, 4), generator=gen(1))
    assert torch.equal(a, sample(model, 2, (3, 4), generator=gen(1), method="naive"))
    known = torch.ones(3, 4, dtype=torch.bool)
    known[2:] = False
    b = model.complete(a, known, generator=gen(2))
    assert torch.equal(b, complete(model, a, known, generator=gen(2), method="naive"))


def test_progress_reports_every_row():
    calls = []
    sample(tiny_model("row_lstm"), 1, (4, 3), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("name", pixelgen.list_models())
def test_every_registered_model_has_a_fast_stepper(name):
    # The steppers are keyed by the model class's import path: a renamed or moved class
    # must not fall back to the naive sampler unnoticed.
    assert fast_stepper(tiny_model(name)) is not None


def test_model_without_stepper_falls_back_to_naive_with_a_warning():
    class Unregistered(PixelCNN):
        pass

    torch.manual_seed(0)
    model = Unregistered(
        channels=1,
        levels=3,
        hidden=4,
        layers=1,
        out_hidden=None,
        kernel=3,
        input_kernel=7,
        residual=True,
    ).double()
    with pytest.warns(UserWarning, match="no fast sampler for Unregistered"):
        a = sample(model, 2, (3, 3), generator=gen())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the naive method itself does not warn
        assert torch.equal(a, sample(model, 2, (3, 3), generator=gen(), method="naive"))


def test_inverse_cdf():
    # Probabilities (1/2, 0, 1/2) are exact in floating point, so u = 1/2 lies exactly on
    # the boundary (log(0.25) would round, and which side u = 0.25 fell on depended on
    # the CPU's exp). Level 1 has probability 0 and is never drawn.
    logits = torch.tensor([0.0, float("-inf"), 0.0]).expand(5, 3)
    u = torch.tensor([0.0, 0.4999, 0.5, 0.9, 1.0 - 1e-17], dtype=torch.float64)
    assert inverse_cdf(logits, u).tolist() == [0, 0, 2, 2, 2]
    flat = torch.zeros(2, 4)
    assert inverse_cdf(flat, torch.tensor([0.49, 0.51])).tolist() == [1, 2]
    # Temperature divides the logits: a tiny one picks the argmax for any u.
    peaked = torch.tensor([[0.0, 1.0, 0.5]]).expand(3, 3)
    assert inverse_cdf(peaked, torch.tensor([0.0, 0.5, 0.999]), 1e-3).tolist() == [1, 1, 1]


def test_uniforms_are_float64_and_seeded():
    u = draw_uniforms((2, 3, 4, 5), gen(3))
    assert u.dtype == torch.float64 and u.shape == (2, 3, 4, 5)
    assert torch.equal(u, draw_uniforms((2, 3, 4, 5), gen(3)))
    assert 0 <= float(u.min()) and float(u.max()) < 1


def test_bad_arguments_are_typed_errors():
    model = tiny_model("pixelcnn", levels=3)
    with pytest.raises(ConfigError, match="method"):
        sample(model, 1, (2, 2), method="slow")
    with pytest.raises(ConfigError, match="temperature"):
        sample(model, 1, (2, 2), temperature=0.0)
    with pytest.raises(ConfigError, match="n: must be >= 1"):
        sample(model, 0, (2, 2))
    x = torch.full((1, 1, 2, 2), 3)
    with pytest.raises(ImageError, match=r"\[0, 3\)"):
        complete(model, x, torch.ones(1, dtype=torch.bool))
    with pytest.raises(ImageError, match="known mask of shape \\(3, 3\\)"):
        complete(model, torch.zeros(1, 1, 2, 2, dtype=torch.long), torch.ones(3, 3).bool())
    with pytest.raises(ImageError, match=r"\(N, 1, H, W\)"):
        complete(model, torch.zeros(1, 3, 2, 2, dtype=torch.long), torch.zeros(1).bool())


def test_math_sanity_of_the_chi_square_p_value():
    # gammaincc(k/2, x/2) is the chi-square survival function: median of chi2(2) is 2 ln 2.
    # float64: in float32 the result sits within an ulp of 0.5 that varies by CPU kernel.
    half = torch.special.gammaincc(
        torch.tensor(1.0, dtype=torch.float64), torch.tensor(math.log(2.0), dtype=torch.float64)
    )
    assert abs(float(half) - 0.5) < 1e-12

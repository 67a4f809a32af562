"""The model contract, causality and exact normalization, for every registered model (§2-3).

Values are indexed in raster-then-channel order: ``p = (i * W + j) * C + c``.
"""

from __future__ import annotations

import inspect
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import pixelgen
from conftest import dependency_matrix, tiny_model
from pixelgen.errors import ConfigError, UnknownModelError

MODELS = pixelgen.list_models()


def test_registry_names():
    assert MODELS == ["diagonal_bilstm", "gated_pixelcnn", "pixelcnn", "row_lstm"]


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownModelError, match="pixelcnn, row_lstm") as err:
        pixelgen.create_model("row_lstn")
    assert "did you mean 'row_lstm'" in str(err.value)


@pytest.mark.parametrize("name", MODELS)
def test_unknown_hyperparameter_is_named(name):
    with pytest.raises(ConfigError, match="hiden"):
        pixelgen.create_model(name, hiden=3)


@pytest.mark.parametrize("name", MODELS)
def test_hyperparameters_are_keyword_only_with_paper_defaults(name):
    hp = pixelgen.model_hparams(name)
    assert {"channels", "levels", "hidden", "layers", "out_hidden"} <= set(hp)
    assert hp["input_kernel"] == 7 and hp["residual"] is True
    if name != "pixelcnn":
        assert hp["skip"] is True


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 256)])
@pytest.mark.parametrize("size", [(5, 7), (8, 3)])
def test_contract_shapes_and_log_prob(name, channels, levels, size):
    model = tiny_model(name, channels=channels, levels=levels)
    x = torch.randint(0, levels, (2, channels, *size))
    logits = model(x)
    assert logits.shape == (2, levels, channels, *size)
    nll = F.cross_entropy(logits, x, reduction="none").flatten(1).sum(1)
    assert torch.allclose(model.log_prob(x), -nll)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_causality_by_perturbation(name, channels):
    """Changing any value at or after position q never changes the logits at q."""
    torch.manual_seed(3)
    model = tiny_model(
        name, channels=channels, levels=4, hidden=4 * channels, layers=3, random_biases=False
    )
    x = torch.randint(0, 4, (1, channels, 6, 6))
    dep = dependency_matrix(model, x)  # (P, Q)
    n = dep.shape[0]
    order = torch.arange(n)
    at_or_after = order[:, None] >= order[None, :]
    leaks = (dep & at_or_after).nonzero().tolist()
    assert not leaks, f"logits depend on the value itself or later ones: {leaks[:5]}"
    # Not vacuous: the model does use its past, including earlier colours of the pixel.
    assert dep.sum() > n * (n - 1) // 2 * 0.3
    if channels == 3:
        # A ReLU can switch a path off for one particular image, so ask for most pixels.
        r, g = torch.arange(0, n, 3), torch.arange(1, n, 3)
        for earlier, later in [(r, g), (r, g + 1), (g, g + 1)]:
            assert dep[earlier, later].float().mean() > 0.8


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "channels,levels,size",
    [(1, 2, (3, 3)), (3, 3, (1, 2)), (1, 3, (2, 2))],
)
def test_probabilities_of_all_images_sum_to_one(name, channels, levels, size):
    model = tiny_model(name, channels=channels, levels=levels, layers=2)
    h, w = size
    n = channels * h * w
    images = torch.tensor(list(itertools.product(range(levels), repeat=n)))
    images = images.view(-1, h, w, channels).permute(0, 3, 1, 2)  # every image once
    assert len(images) == levels**n
    with torch.no_grad():
        total = torch.logsumexp(model.log_prob(images), dim=0).exp().item()
    assert abs(total - 1.0) < 1e-5


def _pixel_field(name: str, q: tuple[int, int], size=(10, 10), layers=3, **kw) -> torch.Tensor:
    """``(H, W)`` bool: which pixels the logits at pixel ``q`` depend on (1 channel)."""
    torch.manual_seed(5)
    model = tiny_model(name, levels=4, layers=layers, **kw, random_biases=False)
    h, w = size
    x = torch.randint(0, 4, (1, 1, h, w))
    dep = dependency_matrix(model, x)
    return dep[:, q[0] * w + q[1]].view(h, w)


@pytest.mark.parametrize("channels", [1, 3])
def test_diagonal_bilstm_context_complete_but_for_the_derived_gap(channels):
    """Every earlier value is seen, except the last value of row i-1 by pixels more
    than input_kernel // 2 = 3 columns from the right edge (pixelrnn.md §3)."""
    torch.manual_seed(11)
    h = w = 10
    model = tiny_model(
        "diagonal_bilstm", channels=channels, levels=4, hidden=12, layers=2, random_biases=False
    )
    # A ReLU that is off for one image hides a path; the union over images does not.
    dep = sum(
        dependency_matrix(model, torch.randint(0, 4, (1, channels, h, w))).int() for _ in range(3)
    ).bool()
    n = dep.shape[0]
    order = torch.arange(n)
    expected = order[:, None] < order[None, :]
    for i in range(1, h):
        gap = ((i - 1) * w + (w - 1)) * channels + channels - 1  # last value of row i-1
        for j in range(w - 1 - 3):
            for c in range(channels):
                expected[gap, (i * w + j) * channels + c] = False
    missing = (expected & ~dep).nonzero().tolist()
    extra = (dep & ~expected).nonzero().tolist()
    assert not missing, f"context missing: {missing[:5]}"
    assert not extra, f"unexpected dependence: {extra[:5]}"


@pytest.mark.parametrize("channels", [1, 3])
def test_diagonal_bilstm_complete_context_sees_every_earlier_value(channels):
    """With complete_context, every value (i, j, c) sees every earlier value in
    raster-then-channel order, the last value of row i-1 included, and nothing else:
    no exception, and no later value (10x10 and 2 layers: the whole earlier image is in
    reach)."""
    torch.manual_seed(11)
    h = w = 10
    model = tiny_model(
        "diagonal_bilstm",
        channels=channels,
        levels=4,
        hidden=12,
        layers=2,
        complete_context=True,
        random_biases=False,
    )
    # A ReLU that is off for one image hides a path; the union over images does not.
    dep = sum(
        dependency_matrix(model, torch.randint(0, 4, (1, channels, h, w))).int() for _ in range(3)
    ).bool()
    order = torch.arange(dep.shape[0])
    expected = order[:, None] < order[None, :]
    missing = (expected & ~dep).nonzero().tolist()
    extra = (dep & ~expected).nonzero().tolist()
    assert not missing, f"context missing: {missing[:5]}"
    assert not extra, f"unexpected dependence: {extra[:5]}"


def test_diagonal_bilstm_complete_context_adds_parameters_only():
    """Off, the model is the paper's (same names, shapes and values from one seed); on, it
    adds one parameter, and the shared ones are drawn exactly as without it."""
    torch.manual_seed(4)
    paper = pixelgen.create_model("diagonal_bilstm", channels=3, hidden=6, layers=2)
    torch.manual_seed(4)
    full = pixelgen.create_model(
        "diagonal_bilstm", channels=3, hidden=6, layers=2, complete_context=True
    )
    a, b = paper.state_dict(), full.state_dict()
    assert set(b) - set(a) == {"rnns.0.right.raw_to_state"} and set(a) <= set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert b["rnns.0.right.raw_to_state"].shape == (4 * 6, 3)
    assert pixelgen.model_hparams("diagonal_bilstm")["complete_context"] is False


def test_row_lstm_triangular_field():
    """A pixel (i, j) sees (i - d, j + e) above it iff e <= d + 2, however far up."""
    i, j = 8, 2
    field = _pixel_field("row_lstm", (i, j))
    for r in range(i):
        for col in range(j, 10):
            d, e = i - r, col - j
            assert bool(field[r, col]) == (e <= d + 2), (r, col)
    assert field[0, j]  # the top row, 8 rows up: no depth limit


@pytest.mark.parametrize("layers", [1, 3])
def test_pixelcnn_blind_spot_and_bounded_field(layers):
    """With L blocks, (i, j) sees (i - d, j + e), e >= 0, iff d <= L + 3 and
    e <= min(d + 2, L + 3): the region right of that diagonal is its blind spot."""
    i, j = 9, 1
    field = _pixel_field("pixelcnn", (i, j), layers=layers)
    for r in range(i):
        for col in range(j, 10):
            d, e = i - r, col - j
            seen = d <= layers + 3 and e <= min(d + 2, layers + 3)
            assert bool(field[r, col]) == seen, (r, col)


@pytest.mark.parametrize(
    "channels,layers,kernel", [(1, 1, 3), (1, 3, 3), (1, 2, 5), (3, 1, 3), (3, 2, 5)]
)
def test_gated_pixelcnn_context_is_complete(channels, layers, kernel):
    """With L layers, kernel n (p = n // 2) and input kernel 3 (r = 1), value (i, j, c)
    sees exactly: every value of the rows i - d, 1 <= d <= L p + r + 1, at columns
    |j' - j| <= L p + r (the vertical stack: its input reaches r rows up and r columns
    each side, each layer p more, the shift one row); the current row's columns
    j - L p - r .. j - 1 (the horizontal stack: r from the input layer, p per layer);
    and the earlier colours of (i, j). No blind spot: nothing earlier inside that
    window is missing, for every pixel of the image (clipped at its borders)."""
    torch.manual_seed(13)
    h, w = 9, 13
    model = tiny_model(
        "gated_pixelcnn",
        channels=channels,
        levels=4,
        hidden=4 * channels,
        layers=layers,
        kernel=kernel,
        input_kernel=3,
        random_biases=False,
    )
    # A gate or ReLU that is off for one image hides a path; the union over images does not.
    dep = sum(
        dependency_matrix(model, torch.randint(0, 4, (1, channels, h, w))).int() for _ in range(3)
    ).bool()
    reach = layers * (kernel // 2) + 1  # L p + r
    expected = torch.zeros_like(dep)
    for i, j, c in itertools.product(range(h), range(w), range(channels)):
        q = (i * w + j) * channels + c
        for r, col, c2 in itertools.product(range(h), range(w), range(channels)):
            d, e = i - r, col - j
            above = 1 <= d <= reach + 1 and abs(e) <= reach
            left = d == 0 and -reach <= e <= -1
            own = d == 0 and e == 0 and c2 < c
            expected[(r * w + col) * channels + c2, q] = above or left or own
    missing = (expected & ~dep).nonzero().tolist()
    extra = (dep & ~expected).nonzero().tolist()
    assert not missing, f"context missing: {missing[:5]}"
    assert not extra, f"unexpected dependence: {extra[:5]}"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_gradients_reach_every_parameter(name, channels):
    model = tiny_model(name, channels=channels, levels=4, layers=2).float().train()
    x = torch.randint(0, 4, (3, channels, 6, 5))
    (-model.log_prob(x).mean()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_lower_the_nll(name):
    torch.manual_seed(0)
    model = tiny_model(name, channels=1, levels=2, layers=2).float().train()
    x = (torch.rand(8, 1, 8, 8) > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss = -model.log_prob(x).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.05 * 64 * math.log(2)


@pytest.mark.parametrize("name", MODELS)
def test_ablations_build_and_stay_causal(name):
    kw = {"residual": False} if name == "pixelcnn" else {"residual": False, "skip": False}
    torch.manual_seed(2)
    model = tiny_model(name, channels=3, levels=3, layers=2, **kw, random_biases=False)
    x = torch.randint(0, 3, (1, 3, 4, 4))
    dep = dependency_matrix(model, x)
    order = torch.arange(dep.shape[0])
    assert not (dep & (order[:, None] >= order[None, :])).any()


@pytest.mark.parametrize("name", MODELS)
def test_bad_hyperparameters_are_config_errors(name):
    with pytest.raises(ConfigError, match="model.levels"):
        pixelgen.create_model(name, levels=1)
    with pytest.raises(ConfigError, match="model.hidden"):
        pixelgen.create_model(name, channels=3, hidden=2)


@pytest.mark.parametrize(
    ("hparams", "expected"),
    [
        ({"layers": 0}, "model.layers: must be >= 1, got 0"),
        ({"input_kernel": 4}, "model.input_kernel: must be odd, got 4"),
        ({"hidden": "8"}, "model.hidden: expected an integer, got '8'"),
        ({"residual": 1}, "model.residual: expected true or false, got 1"),
        ({"channels": 0}, "model.channels: must be >= 1, got 0"),
    ],
)
def test_create_model_checks_hyperparameters_like_a_recipe(hparams, expected):
    # One check, at the edge (create_model, and a recipe's model section); the classes trust it.
    with pytest.raises(ConfigError) as err:
        pixelgen.create_model("row_lstm", **hparams)
    assert str(err.value) == expected


def test_create_model_records_every_hyperparameter():
    model = pixelgen.create_model("pixelcnn", hidden=4, layers=1, out_hidden=8.0)
    assert model.hparams == {**pixelgen.model_hparams("pixelcnn"), "hidden": 4, "layers": 1,
                             "out_hidden": 8}  # fmt: skip
    assert isinstance(model.hparams["out_hidden"], int)


class _Positional(torch.nn.Module):
    def __init__(self, width: int = 3) -> None:  # a positional hyperparameter
        super().__init__()


def test_hyperparameters_are_declared_once_in_the_model_classes():
    from pixelgen import registry

    for name in MODELS:  # every entry point only forwards to its class
        assert list(inspect.signature(registry._builder(name)).parameters) == ["kwargs"]
    # the chain of __init__ declarations, the model's own default winning
    assert pixelgen.model_hparams("pixelcnn")["layers"] == 15
    assert pixelgen.model_hparams("row_lstm")["layers"] == 7
    types = registry.model_signature("row_lstm")
    assert types["state_kernel"] == (int, 3) and types["out_hidden"][1] is None


def test_positional_hyperparameters_are_refused_at_registration():
    def positional(**kwargs) -> _Positional:
        return _Positional(**kwargs)

    with pytest.raises(TypeError, match="'width' must be keyword-only"):
        pixelgen.register_model(positional)
    assert "positional" not in pixelgen.list_models()

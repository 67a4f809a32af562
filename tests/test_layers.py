"""The optimized layers (``pixelgen.nn``) compute exactly what the plain reference layers
(``pixelgen/nn/reference.py``) compute: same state_dict, same outputs and same
gradients (parameters and input) to 1e-10 in float64, for every layer and model. The
recurrent layers' tests run twice (``scan_path``): with the native scans and the Python
ones (``tests/test_native.py`` compares those two directly)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

import pixelgen
from conftest import tiny_model
from pixelgen.nn import DiagonalBiLSTM, MaskedConv2d, RowLSTM, channel_groups
from pixelgen.nn import reference as ref
from pixelgen.nn.diagonal_lstm import shift_down, skew, unskew

TOL = 1e-10
SHAPES = [((5, 7), 1), ((7, 5), 3)]  # (H, W), batch


def _twin(module: torch.nn.Module) -> torch.nn.Module:
    return ref.to_reference(copy.deepcopy(module))


def _assert_same(fast: torch.nn.Module, plain: torch.nn.Module, x: torch.Tensor) -> None:
    """Outputs, parameter gradients and input gradient agree to TOL."""
    assert fast.state_dict().keys() == plain.state_dict().keys()
    xf, xp = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yf, yp = fast(xf), plain(xp)
    assert yf.shape == yp.shape
    assert (yf - yp).abs().max().item() < TOL
    g = torch.randn_like(yp)
    (yf * g).sum().backward()
    (yp * g).sum().backward()
    assert (xf.grad - xp.grad).abs().max().item() < TOL
    named = dict(plain.named_parameters())
    for name, p in fast.named_parameters():
        q = named[name]
        assert p.grad is not None and q.grad is not None, name
        assert (p.grad - q.grad).abs().max().item() < TOL, name
    with torch.no_grad():  # the inference path is separate code: check it too
        assert (fast(x) - plain(x)).abs().max().item() < TOL


class _Scaled(torch.nn.Module):
    """A model fed the scaled float image, so that the input gradient exists."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_scaled(x)


def _layer(kind: str, colours: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    features, hidden = 4 * colours, 3 * colours
    if kind == "row_lstm":
        return RowLSTM(in_channels=features, hidden=hidden, colours=colours).double()
    if kind == "diagonal_bilstm":
        return DiagonalBiLSTM(in_channels=features, hidden=hidden, colours=colours).double()
    kernel = {"conv1x1": 1, "conv1x3": (1, 3), "conv3x3": 3}[kind]
    groups = channel_groups(features, colours)
    return MaskedConv2d(
        features, features, kernel, mask_type="B", in_groups=groups, out_groups=groups
    ).double()


@pytest.mark.parametrize("kind", ["row_lstm", "diagonal_bilstm", "conv1x1", "conv1x3", "conv3x3"])
@pytest.mark.parametrize("colours", [1, 3])
@pytest.mark.parametrize("size,batch", SHAPES)
def test_layer_equals_reference(kind, colours, size, batch, scan_path):
    layer = _layer(kind, colours)
    x = torch.randn(batch, 4 * colours, *size, dtype=torch.float64)
    _assert_same(layer, _twin(layer), x)


class _WithRaw(torch.nn.Module):
    """A Diagonal BiLSTM reading its last ``raw`` input maps as the raw image."""

    def __init__(self, layer: torch.nn.Module, raw: int) -> None:
        super().__init__()
        self.layer, self.raw = layer, raw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x[:, : -self.raw], x[:, -self.raw :])


@pytest.mark.parametrize("colours", [1, 3])
@pytest.mark.parametrize("size,batch", [*SHAPES, ((1, 1), 2), ((1, 6), 2), ((6, 1), 2)])
def test_diagonal_bilstm_with_raw_input_equals_reference(colours, size, batch, scan_path):
    """The complete-context first layer: the raw image into the right-to-left gates."""
    torch.manual_seed(3)
    layer = DiagonalBiLSTM(
        in_channels=4 * colours, hidden=3 * colours, colours=colours, raw_channels=colours
    ).double()
    assert layer.right.raw_to_state.shape == (12 * colours, colours)
    assert layer.left.raw_to_state is None
    x = torch.randn(batch, 5 * colours, *size, dtype=torch.float64)
    _assert_same(_WithRaw(layer, colours), _WithRaw(_twin(layer), colours), x)
    with pytest.raises(ValueError, match="raw"):
        layer(x[:, : 4 * colours])


@pytest.mark.parametrize("name", pixelgen.list_models())
def test_reference_model_never_runs_the_optimized_code(name, monkeypatch):
    # Otherwise the comparisons above would compare a layer with itself.
    import pixelgen.nn.diagonal_lstm as diagonal
    import pixelgen.nn.masked as masked
    import pixelgen.nn.residual as residual
    import pixelgen.nn.row_lstm as row

    plain = ref.reference_model(tiny_model(name))

    def refuse(*args, **kwargs):
        raise AssertionError("the reference ran an optimized kernel")

    for target, attr in [
        (masked, "pointwise"),
        (masked.MaskedConv2d, "channels_first"),
        (residual, "_forward"),
        (residual._ResidualStack, "apply"),
        (row, "_row_scan"),
        (row._RowRecurrence, "apply"),
        (diagonal, "_diagonal_scan"),
        (diagonal._DiagonalRecurrence, "apply"),
    ]:
        monkeypatch.setattr(target, attr, refuse)
    x = torch.randint(0, plain.levels, (2, 1, 4, 5))
    plain.forward_scaled(plain.scale(x).requires_grad_(True)).sum().backward()
    with pytest.raises(AssertionError, match="optimized kernel"):
        tiny_model(name)(x)  # and the optimized model does run them


@pytest.mark.parametrize("input_state_kernel,state_kernel", [(1, 1), (5, 5), (3, 1)])
def test_row_lstm_other_kernels(input_state_kernel, state_kernel, scan_path):
    torch.manual_seed(1)
    layer = RowLSTM(
        in_channels=6,
        hidden=4,
        colours=1,
        input_state_kernel=input_state_kernel,
        state_kernel=state_kernel,
    ).double()
    _assert_same(layer, _twin(layer), torch.randn(2, 6, 4, 6, dtype=torch.float64))


@pytest.mark.parametrize("size", [(1, 1), (1, 6), (6, 1), (2, 9)])
def test_diagonal_bilstm_degenerate_sizes(size, scan_path):
    layer = _layer("diagonal_bilstm", 1, seed=2)
    _assert_same(layer, _twin(layer), torch.randn(2, 4, *size, dtype=torch.float64))


@pytest.mark.parametrize("name", ["row_lstm", "diagonal_bilstm", "pixelcnn"])
@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 5)])
@pytest.mark.parametrize("size,batch", SHAPES)
def test_model_logits_and_gradients_equal_reference(name, channels, levels, size, batch, scan_path):
    model = tiny_model(name, channels=channels, levels=levels, hidden=3 * channels, layers=2)
    plain = ref.reference_model(model)
    # every optimized layer runs its reference forward (the twins are exact subclasses)
    assert not any(type(m) in ref.TWINS for m in plain.modules())
    x = torch.randint(0, levels, (batch, channels, *size))
    _assert_same(_Scaled(model), _Scaled(plain), model.scale(x))


def test_channels_first_projection_equals_the_module():
    conv = _layer("conv1x1", 3)
    with torch.no_grad():
        conv.bias.normal_()  # a lost bias must show
    x = torch.randn(2, 12, 5, 7, dtype=torch.float64)
    expected = conv(x).permute(1, 2, 3, 0)  # (O, H, W, B)
    assert (conv.channels_first(x.permute(1, 2, 3, 0)) - expected).abs().max().item() < TOL
    with pytest.raises(ValueError, match="only a 1x1"):
        _layer("conv3x3", 1).channels_first(x[:, :4].permute(1, 2, 3, 0))


@pytest.mark.parametrize("kernel,size", [(1, (6, 5)), (5, (6, 5)), (3, (1, 5)), (3, (6, 1))])
def test_pixelcnn_residual_stack_equals_reference(kernel, size, monkeypatch):
    """``nn.residual`` runs the blocks in one function (it does run: counted), for any
    kernel and degenerate sizes, and leaves the features it was given untouched."""
    import pixelgen.nn.residual as residual

    calls = []
    forward = residual._forward
    monkeypatch.setattr(residual, "_forward", lambda *a: calls.append(1) or forward(*a))
    model = tiny_model("pixelcnn", channels=3, levels=3, hidden=6, layers=3, kernel=kernel)
    x = model.scale(torch.randint(0, 3, (2, 3, *size)))
    _assert_same(_Scaled(model), _Scaled(ref.reference_model(model)), x)
    assert len(calls) == 2  # with gradients, then without
    features = torch.randn(2, 12, *size, dtype=torch.float64, requires_grad=True)
    before = features.detach().clone()
    model.body(features).sum().backward()
    assert torch.equal(features.detach(), before)


@pytest.mark.parametrize(
    "name,hooked",
    [
        ("pixelcnn", lambda m: m.blocks[1].conv),
        ("row_lstm", lambda m: m.rnns[1]),
        ("diagonal_bilstm", lambda m: m.rnns[1]),
        ("diagonal_bilstm", lambda m: m.skips[0]),
    ],
)
def test_models_with_hooks_run_their_modules(name, hooked):
    """A hook on a layer (pruning reweights through one) must see its call: the fast
    bodies, which compute the layers without calling them, step aside."""
    model = tiny_model(name, channels=1, levels=2, hidden=4, layers=2)
    x = torch.randint(0, 2, (2, 1, 4, 5))
    expected = ref.reference_model(model)(x)
    seen = []
    hooked(model).register_forward_hook(lambda *a: seen.append(1))
    assert (model(x) - expected).abs().max().item() < TOL
    assert seen == [1]


@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 5)])
@pytest.mark.parametrize("kw", [{}, {"kernel": 5, "residual": False, "skip": False}])
def test_gated_pixelcnn_logits_and_gradients_equal_reference(channels, levels, kw):
    model = tiny_model(
        "gated_pixelcnn", channels=channels, levels=levels, hidden=3 * channels, layers=2, **kw
    )
    plain = ref.reference_model(model)
    assert not any(type(m) in ref.TWINS for m in plain.modules())
    x = torch.randint(0, levels, (2, channels, 7, 5))
    _assert_same(_Scaled(model), _Scaled(plain), model.scale(x))


@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 5)])
@pytest.mark.parametrize("size,batch", SHAPES)
def test_complete_context_diagonal_bilstm_equals_reference(
    channels, levels, size, batch, scan_path
):
    model = tiny_model(
        "diagonal_bilstm", channels=channels, levels=levels, hidden=3 * channels, layers=2,
        complete_context=True,
    )  # fmt: skip
    plain = ref.reference_model(model)
    assert not any(type(m) in ref.TWINS for m in plain.modules())
    x = torch.randint(0, levels, (batch, channels, *size))
    _assert_same(_Scaled(model), _Scaled(plain), model.scale(x))


def test_ablated_models_equal_reference():
    for name, kw in [
        ("row_lstm", {"residual": False, "skip": False}),
        ("diagonal_bilstm", {"residual": True, "skip": False}),
        ("diagonal_bilstm", {"skip": False, "complete_context": True}),
    ]:
        model = tiny_model(name, channels=3, levels=3, hidden=6, layers=2, **kw)
        x = torch.randint(0, 3, (2, 3, 4, 5))
        with torch.no_grad():
            assert (model(x) - ref.reference_model(model)(x)).abs().max().item() < TOL


def test_state_dict_names_and_shapes_unchanged():
    """Checkpoints of every model load into the reference twin and back, unchanged."""
    for name in pixelgen.list_models():
        model = tiny_model(name, channels=3, levels=4, hidden=6, layers=2)
        plain = ref.reference_model(model)
        a, b = model.state_dict(), plain.state_dict()
        assert list(a) == list(b)
        assert all(a[k].shape == b[k].shape for k in a)
        model.load_state_dict(b)


def test_masked_weight_follows_optimizer_steps():
    """No stale ``weight * mask``: after each step the layer equals a reference built
    from its current weights, and masked-out weight entries never matter."""
    layer = _layer("conv1x3", 3).float()
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.randn(2, 12, 4, 5)
    for _ in range(2):
        opt.zero_grad()
        layer(x).square().sum().backward()
        opt.step()
        with torch.no_grad():
            assert torch.allclose(layer(x), _twin(layer)(x), atol=1e-5)
    with torch.no_grad():
        before = layer(x)
        layer.weight.add_((1 - layer.mask) * 100.0)  # only entries the mask removes
        assert torch.equal(layer(x), before)


def test_skew_unskew_round_trip_and_layout():
    x = torch.randn(2, 3, 4, 6)
    s = skew(x)
    assert s.shape == (2, 3, 4, 9)
    for i in range(4):
        assert torch.equal(s[:, :, i, i : i + 6], x[:, :, i])
        assert s[:, :, i, :i].abs().sum() == 0 and s[:, :, i, i + 6 :].abs().sum() == 0
    assert torch.equal(unskew(s), x)
    assert torch.equal(shift_down(x)[:, :, 1:], x[:, :, :-1])
    assert shift_down(x)[:, :, 0].abs().sum() == 0


@pytest.mark.parametrize(
    "name,kw",
    [("row_lstm", {}), ("diagonal_bilstm", {}), ("diagonal_bilstm", {"complete_context": True})],
)
def test_traced_program_equals_model(name, kw):
    """``pixelgen export`` traces the plain loops: same logits, batch size not baked in."""
    model = tiny_model(name, channels=3, levels=4, hidden=6, layers=2, **kw)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.randint(0, 4, (2, 3, 4, 5)), check_trace=False)
        x = torch.randint(0, 4, (3, 3, 4, 5))
        assert (traced(x) - model(x)).abs().max().item() < TOL


@pytest.mark.parametrize(
    "name,kw",
    [("row_lstm", {}), ("diagonal_bilstm", {}), ("diagonal_bilstm", {"complete_context": True})],
)
def test_bfloat16_autocast_trains(name, kw, scan_path):
    """Under autocast the hand-written recurrences run in the gates' dtype."""
    model = tiny_model(name, channels=3, levels=4, hidden=6, layers=2, **kw).float().train()
    x = torch.randint(0, 4, (2, 3, 4, 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), x)
    loss.backward()
    assert abs(loss.item() - F.cross_entropy(model(x), x).item()) < 0.05
    for p in model.parameters():
        assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()

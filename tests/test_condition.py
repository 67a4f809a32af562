"""The conditioning mechanism (§3.5, ``pixelgen/nn/condition.py``) in every registered
model: causal in the pixels whatever the condition, the gradient reaches every layer's
condition weights, the condition changes the output, each class's distribution is
normalized, fast sampling equals naive, and unconditional models are unchanged."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import pixelgen
from conftest import dependency_matrix, tiny_model
from pixelgen.errors import ConditionError
from pixelgen.nn import reference as ref
from pixelgen.sampling import complete, sample

MODELS = pixelgen.list_models()
CLASSES = 3


def cond_of(kind: str, batch: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """Class labels ``(B,)`` or a random float map ``(B, CLASSES, H, W)``."""
    g = torch.Generator().manual_seed(seed)
    if kind == "class":
        return torch.randint(0, CLASSES, (batch,), generator=g)
    return torch.randn(batch, CLASSES, *size, generator=g, dtype=torch.float64)


class Fixed(torch.nn.Module):
    """A conditional model with its condition fixed (broadcast over any batch)."""

    def __init__(self, model: torch.nn.Module, cond: torch.Tensor) -> None:
        super().__init__()
        self.model, self.cond, self.levels = model, cond, model.levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.cond)


# The Diagonal BiLSTM's complete-context input shares the product the condition joins.
VARIANTS = [(name, {}) for name in MODELS] + [("diagonal_bilstm", {"complete_context": True})]


@pytest.mark.parametrize("name,kw", VARIANTS)
@pytest.mark.parametrize("kind", ["class", "map"])
def test_causal_in_the_pixels_whatever_the_condition(name, kw, kind):
    torch.manual_seed(3)
    model = tiny_model(
        name, channels=3, hidden=12, layers=2, cond_channels=CLASSES, random_biases=False, **kw
    )
    x = torch.randint(0, 4, (1, 3, 5, 5))
    cond = cond_of(kind, 1, (5, 5))
    dep = dependency_matrix(Fixed(model, cond), x)  # (P, Q)
    order = torch.arange(dep.shape[0])
    leaks = (dep & (order[:, None] >= order[None, :])).nonzero().tolist()
    assert not leaks, f"logits depend on the value itself or later ones: {leaks[:5]}"
    assert dep.sum() > dep.shape[0] * (dep.shape[0] - 1) // 2 * 0.3  # not vacuous


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kind", ["class", "map"])
def test_gradient_reaches_every_layers_condition_weights(name, kind):
    model = tiny_model(name, channels=1, layers=3, cond_channels=CLASSES)
    x = torch.randint(0, 4, (4, 1, 5, 4))
    model.log_prob(x, cond_of(kind, 4, (5, 4))).sum().backward()
    maps = model.condition.maps
    assert len(maps) == {"pixelcnn": 3, "row_lstm": 3}.get(name, 6)  # two per layer else
    for k, conv in enumerate(maps):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, k


@pytest.mark.parametrize("name", MODELS)
def test_the_condition_changes_the_output_through_every_layer(name):
    model = tiny_model(name, channels=1, layers=2, cond_channels=CLASSES)
    x = torch.randint(0, 4, (1, 1, 4, 4)).repeat(CLASSES, 1, 1, 1)
    with torch.no_grad():
        logits = model(x, torch.arange(CLASSES))  # the same image under each class
        for a, b in itertools.combinations(range(CLASSES), 2):
            assert (logits[a] - logits[b]).abs().max() > 1e-3
        for conv in model.condition.maps:  # each term on its own moves the output
            before = model(x, torch.arange(CLASSES))
            saved = conv.weight.clone()
            conv.weight.zero_()
            assert (model(x, torch.arange(CLASSES)) - before).abs().max() > 1e-6
            conv.weight.copy_(saved)


@pytest.mark.parametrize("name", MODELS)
def test_probabilities_of_all_images_sum_to_one_for_each_class(name):
    model = tiny_model(name, channels=1, levels=2, layers=2, cond_channels=CLASSES)
    images = torch.tensor(list(itertools.product(range(2), repeat=6))).view(-1, 1, 2, 3)
    totals = []
    with torch.no_grad():
        for k in range(CLASSES):
            logp = model.log_prob(images, torch.full((len(images),), k))
            totals.append(torch.logsumexp(logp, 0).exp().item())
            assert abs(totals[-1] - 1.0) < 1e-9, (k, totals[-1])
    # and the classes are different distributions
    logps = [model.log_prob(images, torch.tensor([k])) for k in range(CLASSES)]
    assert (logps[0] - logps[1]).abs().max() > 1e-3


@pytest.mark.parametrize("name,kw", VARIANTS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", ["class", "map"])
def test_fast_sampling_equals_naive_under_a_condition(name, kw, channels, kind):
    model = tiny_model(
        name, channels=channels, hidden=9, layers=2, seed=1, cond_channels=CLASSES, **kw
    )
    size = (4, 5)
    cond = cond_of(kind, 3, size, seed=2)
    steps = []
    fast = sample(
        model, 3, size, generator=torch.Generator().manual_seed(7), cond=cond,
        on_logits=lambda i, j, c, lg: steps.append((i, j, c, lg.clone())),
    )  # fmt: skip
    naive = sample(
        model, 3, size, generator=torch.Generator().manual_seed(7), cond=cond, method="naive"
    )
    assert torch.equal(fast, naive)
    full = model(fast, cond)
    for i, j, c, logits in steps:  # every step's logits are the model's, exactly
        torch.testing.assert_close(logits, full[:, :, c, i, j], rtol=0, atol=1e-6)
    assert len(fast.unique()) > 1


@pytest.mark.parametrize("name", MODELS)
def test_completion_under_a_class_keeps_known_values_and_agrees_with_naive(name):
    model = tiny_model(name, channels=1, hidden=6, layers=2, seed=4, cond_channels=CLASSES)
    x = torch.randint(0, 4, (3, 1, 5, 4))
    known = torch.zeros(1, 1, 5, 4, dtype=torch.bool)
    known[..., :2, :] = True
    labels = torch.tensor([0, 2, 1])
    fast = complete(model, x, known, generator=torch.Generator().manual_seed(1), cond=labels)
    naive = complete(
        model, x, known, generator=torch.Generator().manual_seed(1), cond=labels, method="naive"
    )
    assert torch.equal(fast, naive)
    assert torch.equal(fast[..., :2, :], x[..., :2, :])


@pytest.mark.parametrize("name", MODELS)
def test_one_label_is_broadcast_to_the_batch(name):
    model = tiny_model(name, cond_channels=CLASSES)
    x = torch.randint(0, 4, (2, 1, 3, 3))
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.tensor([2])), model(x, torch.tensor([2, 2])))
        hot = torch.zeros(2, CLASSES, 1, 1, dtype=torch.float64)
        hot[:, 1] = 1
        torch.testing.assert_close(model(x, hot), model(x, torch.tensor([1, 1])))


@pytest.mark.parametrize("name", MODELS)
def test_unconditional_models_are_unchanged(name):
    torch.manual_seed(0)
    plain = pixelgen.create_model(name, hidden=6, layers=2)
    torch.manual_seed(0)
    zero = pixelgen.create_model(name, hidden=6, layers=2, cond_channels=0)
    torch.manual_seed(0)
    cond = pixelgen.create_model(name, hidden=6, layers=2, cond_channels=CLASSES)
    assert list(zero.state_dict()) == list(plain.state_dict())
    assert plain.condition is None
    assert not [k for k in plain.state_dict() if "condition" in k]
    # Conditional: the same parameters drawn the same way, plus the condition's own.
    extra = [k for k in cond.state_dict() if k not in plain.state_dict()]
    assert extra and all(k.startswith("condition.maps.") for k in extra)
    for k, v in plain.state_dict().items():
        assert torch.equal(cond.state_dict()[k], v), k


@pytest.mark.parametrize("name", MODELS)
def test_misplaced_conditions_are_one_line_errors(name):
    plain, cond = tiny_model(name), tiny_model(name, cond_channels=CLASSES)
    x = torch.randint(0, 4, (2, 1, 3, 3))
    with pytest.raises(ConditionError, match="unconditional"):
        plain(x, torch.tensor([1, 1]))
    with pytest.raises(ConditionError, match="conditional"):
        cond(x)
    with pytest.raises(ConditionError, match="class 3 is out of range"):
        cond(x, torch.tensor([0, 3]))
    with pytest.raises(ConditionError, match="does not fit"):
        cond(x, torch.zeros(2, CLASSES + 1, 1, 1))
    with pytest.raises(ConditionError, match="unconditional"):
        sample(plain, 1, (2, 2), cond=torch.tensor([0]))
    with pytest.raises(ConditionError, match="conditional"):
        sample(cond, 1, (2, 2))


@pytest.mark.parametrize("name,kw", VARIANTS)
@pytest.mark.parametrize("kind", ["class", "map"])
def test_conditional_model_equals_its_reference(name, kw, kind):
    """The fast layers fold the condition into their own products: same logits and
    gradients as the plain layers."""
    fast = tiny_model(name, channels=3, hidden=6, layers=2, cond_channels=CLASSES, **kw)
    plain = ref.reference_model(fast)
    x = torch.randint(0, 4, (2, 3, 4, 5))
    c_fast = cond_of(kind, 2, (4, 5))
    c_plain = copy.deepcopy(c_fast)
    if kind == "map":
        c_fast.requires_grad_(True)
        c_plain.requires_grad_(True)
    lf, lp = fast.log_prob(x, c_fast), plain.log_prob(x, c_plain)
    torch.testing.assert_close(lf, lp, rtol=0, atol=1e-10)
    lf.sum().backward()
    lp.sum().backward()
    plain_params = dict(plain.named_parameters())
    for pname, p in fast.named_parameters():
        torch.testing.assert_close(p.grad, plain_params[pname].grad, rtol=0, atol=1e-10)
    if kind == "map":
        torch.testing.assert_close(c_fast.grad, c_plain.grad, rtol=0, atol=1e-10)

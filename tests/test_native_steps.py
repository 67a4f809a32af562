"""The native bodies of the fast steppers (sampling/native_body.py, nn/csrc/steppers.cpp):
where they run, and that they compute what the Python bodies compute. Exactness against
naive sampling is in test_sampling.py, which runs every stepper both ways."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import tiny_model
from pixelgen.nn import native
from pixelgen.sampling import complete, sample
from pixelgen.sampling.stepper import fast_stepper

NATIVE = ["pixelcnn", "row_lstm", "diagonal_bilstm", "gated_pixelcnn"]
# Non-default wiring and kernels, so a body that hard-codes the defaults fails.
VARIANTS = {
    "pixelcnn": [{}, {"kernel": 5, "residual": False}],
    "row_lstm": [{}, {"input_state_kernel": 5, "skip": False}, {"residual": False}],
    "diagonal_bilstm": [{}, {"residual": False, "skip": False}],
    "gated_pixelcnn": [{}, {"kernel": 5, "residual": False}, {"skip": False}],
}

pytestmark = pytest.mark.skipif(native.load() is None, reason="the extension is not built")


def stepper(model, *, batch=2, size=(4, 5), cond=None):
    x = torch.zeros(batch, model.channels, *size, dtype=torch.long)
    cond_map = None if cond is None else model.cond_map(cond, x)
    with torch.no_grad():
        return fast_stepper(model)(model, x, cond_map)


@pytest.mark.parametrize("name", NATIVE)
def test_native_body_runs_where_it_applies(name):
    model = tiny_model(name, channels=3, levels=4, hidden=5)
    assert stepper(model).native is not None
    assert stepper(model.float()).native is not None
    with native.forced(False):
        assert stepper(model).native is None
    # and what runs once per finished row: the right-to-left scan, the vertical stack
    row_part = {"diagonal_bilstm": "native_right", "gated_pixelcnn": "native_vertical"}
    if name in row_part:
        assert getattr(stepper(model), row_part[name]) is not None
        with native.forced(False):
            assert getattr(stepper(model), row_part[name]) is None
    assert stepper(model.bfloat16()).native is None  # only float and double


@pytest.mark.parametrize("name", NATIVE)
def test_conditional_models_run_natively_and_agree(name):
    """A class (its terms broadcast over the image) and a condition map (a term per
    position): the native body adds each layer's term at each pixel, as the Python body
    does, and every step's logits agree, in float32 with 3 colours (the terms split into
    colour groups as the maps they join)."""
    model = tiny_model(name, channels=3, levels=4, hidden=6, layers=2, cond_channels=3, seed=3)
    model = model.float()
    classes = torch.tensor([0, 2, 1])
    assert stepper(model, batch=3, cond=classes).native is not None
    for cond in (classes, torch.randn(3, 3, 4, 5, generator=gen(5))):
        fast = logits_of(model, (4, 5), 3, True, 3, cond=cond)
        slow = logits_of(model, (4, 5), 3, False, 3, cond=cond)
        assert len(fast) == len(slow) == 3 * 4 * 5
        for a, b in zip(fast, slow, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def logits_of(model, size, seed, on: bool, batch: int = 3, cond=None) -> list[torch.Tensor]:
    steps: list[torch.Tensor] = []
    with native.forced(on):
        sample(
            model, batch, size, generator=torch.Generator().manual_seed(seed), cond=cond,
            on_logits=lambda i, j, c, logits: steps.append(logits.clone()),
        )  # fmt: skip
    return steps


@pytest.mark.parametrize(
    "name, kw", [(n, kw) for n in NATIVE for kw in VARIANTS[n]], ids=lambda v: str(v)
)
@pytest.mark.parametrize("channels", [1, 3])
def test_native_and_python_bodies_agree_in_float32(name, kw, channels):
    """float32, where the two bodies round differently: every step's logits agree."""
    model = tiny_model(name, channels=channels, levels=4, hidden=8, layers=3, seed=4, **kw)
    check_agree(model.float(), (9, 8) if channels == 1 else (5, 6))


@pytest.mark.parametrize("name", NATIVE)
def test_large_maps_agree_too(name):
    """At h = 64 a map spans several 8-column panels of the products' tiles (steppers.cpp),
    and a colour group's columns start inside one; 13 images take tiles of 8, 4 and 1.
    The same values, in float32 and in float64 against naive sampling."""
    model = tiny_model(name, channels=3, levels=4, hidden=64, layers=2, seed=5)
    check_agree(copy.deepcopy(model).float(), (3, 4), batch=13)
    for batch in (2, 9):  # float64: the loops, then the tiles (4 or 8 lanes of double)
        fast = sample(model, batch, (3, 4), generator=gen(9))
        assert torch.equal(fast, sample(model, batch, (3, 4), generator=gen(9), method="naive"))


def check_agree(model, size, batch: int = 3) -> None:
    channels = model.channels
    built = stepper(model, size=size)
    assert built.native is not None and built.fused_rows() is not None  # not Python twice
    fast = logits_of(model, size, 3, True, batch)
    slow = logits_of(model, size, 3, False, batch)
    assert len(fast) == len(slow) == channels * size[0] * size[1]
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hidden", [6, 64])
@pytest.mark.parametrize("name", NATIVE)
def test_a_step_computes_the_colour_groups_its_pixel_skipped(name, hidden):
    """A step computes only the colour groups its pixel has not computed yet: its own
    when every colour is stepped, and those of the known colours before it when they are
    skipped (a completion). Every step's logits agree with the Python body's, which
    computes every group at every step; in the loops (h = 6) and ATen products (h = 64)."""
    model = tiny_model(name, channels=3, levels=4, hidden=hidden, layers=2, seed=8).float()
    x = torch.randint(0, 4, (2, 3, 4, 5), generator=gen(1))
    # Per pixel, the first colours known in both images (0, 1, 2 or all 3 of them).
    first = torch.randint(0, 4, (4, 5), generator=gen(2))
    known = (torch.arange(3).view(3, 1, 1) < first).expand(2, 3, 4, 5)
    steps: dict[bool, list] = {True: [], False: []}
    for on in (True, False):
        with native.forced(on):
            complete(
                model, x, known, generator=gen(3),
                on_logits=lambda i, j, c, z, on=on: steps[on].append((i, j, c, z.clone())),
            )  # fmt: skip
    assert [s[:3] for s in steps[True]] == [s[:3] for s in steps[False]]
    assert len(steps[True]) < 3 * 4 * 5  # some colours were skipped
    for a, b in zip(steps[True], steps[False], strict=True):
        torch.testing.assert_close(a[3], b[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NATIVE)
def test_native_rows_draw_as_naive_at_other_temperatures_and_batch_one(name):
    model = tiny_model(name, channels=3, levels=5, hidden=6, seed=6)
    for temperature, batch in ((0.7, 1), (1.3, 3)):
        fast = sample(model, batch, (3, 4), generator=gen(4), temperature=temperature)
        naive = sample(
            model, batch, (3, 4), generator=gen(4), temperature=temperature, method="naive"
        )
        assert torch.equal(fast, naive) and len(fast.unique()) > 1


@pytest.mark.parametrize("name", NATIVE)
def test_native_rows_complete_channels_last_inputs(name):
    """The native rows write into x in place: an x or a known mask in another memory
    layout is completed as the Python steps complete it."""
    model = tiny_model(name, channels=3, levels=4, hidden=6, seed=7)
    x = torch.randint(0, 4, (2, 3, 4, 5), generator=gen(1))
    known = torch.rand(2, 3, 4, 5, generator=gen(2)) < 0.5
    layouts = [
        (x.contiguous(memory_format=torch.channels_last), known),
        (x, known.contiguous(memory_format=torch.channels_last)),
    ]
    for xs, ks in layouts:
        fast = complete(model, xs, ks, generator=gen(3))
        assert torch.equal(fast, complete(model, x, known, generator=gen(3), method="naive"))
        assert torch.equal(fast[known], x[known])


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)

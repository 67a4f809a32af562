"""Shared test helpers: tiny models and the perturbation dependency matrix."""

from __future__ import annotations

import itertools
import os

import pytest
import torch

import pixelgen
from pixelgen.nn import native


def pytest_configure(config):
    # One build of the native scans for the whole session, subprocesses and tests that
    # move HOME or XDG_CACHE_HOME included: they all read the same cache.
    os.environ.setdefault("PIXELGEN_CACHE", str(native.cache_dir().parents[1]))


@pytest.fixture(scope="session", autouse=True)
def _native_built():
    """Build (or load) the native scans before the first test rather than inside one
    with a time limit; where they cannot be built the Python scans run everywhere."""
    native.load()


@pytest.fixture(params=["native", "python"])
def scan_path(request):
    """Run the test with the native recurrence scans (where built), then the Python ones."""
    if request.param == "native" and native.load() is None:
        pytest.skip("the native scans could not be built on this machine")
    with native.forced(request.param == "native"):
        yield request.param


def tiny_model(
    name: str,
    *,
    channels: int = 1,
    levels: int = 4,
    hidden: int = 6,
    layers: int = 2,
    seed: int = 0,
    random_biases: bool = True,
    **kw,
) -> torch.nn.Module:
    """A small float64 model with a fixed seed and random biases. The biases start at
    zero, which would hide a lost or misplaced bias from every forward comparison (fast
    layers, steppers, ablations, traced programs, export round trips). The dependence
    tests keep them at zero (``random_biases=False``): a negative bias can switch a
    ReLU off for every image and hide a path that the structure has."""
    torch.manual_seed(seed)
    model = pixelgen.create_model(
        name, channels=channels, levels=levels, hidden=hidden, layers=layers, **kw
    )
    return finish_tiny(model, seed, random_biases)


def finish_tiny(model: torch.nn.Module, seed: int, random_biases: bool) -> torch.nn.Module:
    """``model`` in float64 and eval mode, with biases uniform in [-0.5, 0.5) drawn from
    ``seed`` where ``random_biases`` (see :func:`tiny_model`)."""
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if random_biases and pname.endswith("bias"):
                param.copy_(torch.rand(param.shape, generator=g) - 0.5)
    return model.double().eval()


def assert_steps_match_forward(model, x, steps, known=None):
    """Every step's logits ``(i, j, c, logits)`` equal a full forward pass on the final
    images ``x`` (each value was drawn from its exact conditional), and every value not
    ``known`` went through a step."""
    full = model(x)  # (B, L, C, H, W)
    todo = {(i, j, c) for c, i, j in itertools.product(*map(range, x.shape[1:]))}
    if known is not None:
        known = known.expand_as(x)
        todo = {(i, j, c) for i, j, c in todo if not bool(known[:, c, i, j].all())}
    seen = set()
    for i, j, c, logits in steps:
        torch.testing.assert_close(logits, full[:, :, c, i, j], rtol=0, atol=1e-6)
        seen.add((i, j, c))
    assert todo <= seen  # every drawn value went through the hook


def dependency_matrix(model: torch.nn.Module, x: torch.Tensor, tol: float = 1e-12) -> torch.Tensor:
    """``dep[p, q]``: do the logits of value ``q`` change when value ``p`` changes?

    Values are indexed in raster-then-channel order, ``p = (i * W + j) * C + c``. Each
    value is changed to every other level (one batch per level), so a ReLU that happens
    to be off for one image cannot hide a dependence.
    """
    _, c, h, w = x.shape
    n = c * h * w
    levels = model.levels
    with torch.no_grad():
        base = model(x)  # (1, L, C, H, W)
        dep = torch.zeros(n, n, dtype=torch.bool)
        for shift in range(1, levels):
            xs = x.repeat(n, 1, 1, 1)  # (n, C, H, W)
            flat = xs.permute(0, 2, 3, 1).reshape(n, n)  # raster-then-channel order
            idx = torch.arange(n)
            flat[idx, idx] = (flat[idx, idx] + shift) % levels
            xs = flat.reshape(n, h, w, c).permute(0, 3, 1, 2).contiguous()
            out = model(xs)  # (n, L, C, H, W)
            diff = (out - base).abs().amax(dim=1)  # (n, C, H, W)
            dep |= diff.permute(0, 2, 3, 1).reshape(n, n) > tol
    return dep


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors run fastest on one thread, and the test machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

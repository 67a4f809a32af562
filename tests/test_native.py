"""The native recurrence scans (``pixelgen/nn/native.py``, ``nn/csrc/recurrences.cpp``):
the same outputs and gradients as the Python scans to 1e-10 in float64, used exactly
where they should be, and a machine that cannot build them keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from conftest import tiny_model
from pixelgen.nn import DiagonalBiLSTM, RowLSTM, native

TOL = 1e-10
SRC = str(Path(__file__).resolve().parents[1] / "src")

needs_native = pytest.mark.skipif(
    native.load() is None, reason="the native scans could not be built on this machine"
)


def _run(layer: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, on: bool) -> list:
    """Output, input and parameter gradients and the no-grad output, on one path."""
    layer.zero_grad()
    with native.forced(on):
        xx = x.clone().requires_grad_(True)
        y = layer(xx)
        (y * g).sum().backward()
        with torch.no_grad():
            y_eval = layer(x)
    return [y.detach(), xx.grad, y_eval, *(p.grad.clone() for p in layer.parameters())]


def _assert_paths_agree(layer: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        g = torch.randn_like(layer(x))
    fast, plain = _run(layer, x, g, True), _run(layer, x, g, False)
    for a, b in zip(fast, plain, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert (a - b).abs().max().item() < TOL


@needs_native
@pytest.mark.parametrize("cls", [RowLSTM, DiagonalBiLSTM])
@pytest.mark.parametrize("colours", [1, 3])
@pytest.mark.parametrize(
    "size,batch", [((5, 7), 1), ((7, 5), 3), ((1, 1), 2), ((1, 6), 2), ((6, 1), 1), ((9, 9), 2)]
)
def test_native_scans_equal_python_scans(cls, colours, size, batch):
    torch.manual_seed(0)
    layer = cls(in_channels=4 * colours, hidden=3 * colours, colours=colours).double()
    _assert_paths_agree(layer, torch.randn(batch, 4 * colours, *size, dtype=torch.float64))


@needs_native
@pytest.mark.parametrize("state_kernel", [1, 5])
def test_native_row_scan_other_state_kernels(state_kernel):
    torch.manual_seed(1)
    layer = RowLSTM(in_channels=6, hidden=4, colours=1, state_kernel=state_kernel).double()
    _assert_paths_agree(layer, torch.randn(2, 6, 4, 6, dtype=torch.float64))


@needs_native
def test_native_scans_float32_match_python_at_paper_size():
    """float32 at an MNIST paper size (h = 16, 28x28, batch 2): agreement to rounding."""
    torch.manual_seed(2)
    for cls in (RowLSTM, DiagonalBiLSTM):
        layer = cls(in_channels=32, hidden=16, colours=1)
        x = torch.randn(2, 32, 28, 28)
        with torch.no_grad():
            g = torch.randn_like(layer(x))
        for a, b in zip(_run(layer, x, g, True), _run(layer, x, g, False), strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


class _Spy:
    """The extension module, counting the calls to each scan."""

    def __init__(self, module) -> None:
        self.module, self.calls = module, []

    def __getattr__(self, name):
        fn = getattr(self.module, name)

        def call(*args):
            self.calls.append(name)
            return fn(*args)

        return call


@needs_native
@pytest.mark.parametrize("name", ["row_lstm", "diagonal_bilstm"])
def test_native_scans_run_where_usable_and_only_there(name, monkeypatch):
    spy = _Spy(native.load())
    monkeypatch.setattr(native, "load", lambda: spy)
    prefix = "row" if name == "row_lstm" else "diagonal"
    model = tiny_model(name, channels=3, levels=4, hidden=6, layers=2).train()
    x = torch.randint(0, 4, (2, 3, 4, 5))
    with native.forced(True):
        model(x).sum().backward()
        assert spy.calls == [f"{prefix}_forward"] * 2 + [f"{prefix}_backward"] * 2
        spy.calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # bfloat16 gates: Python scans
            model.float()(x).float().sum().backward()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.trace(model, x, check_trace=False)  # export traces the plain loops
        assert spy.calls == []
    with native.forced(False):
        model.double()(x).sum().backward()
    assert spy.calls == []
    monkeypatch.setenv("PIXELGEN_NATIVE", "0")
    model(x).sum().backward()
    assert spy.calls == []


def _layer_in_subprocess(env: dict) -> subprocess.CompletedProcess:
    code = (
        "import json, torch\n"
        "from pixelgen.nn import RowLSTM, native\n"
        "layer = RowLSTM(in_channels=4, hidden=3, colours=1)\n"
        "layer(torch.randn(1, 4, 3, 3)).sum().backward()\n"
        "print(json.dumps(native.enabled()))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("how", ["no compiler", "turned off"])
def test_machine_without_compiler_runs_the_python_scans(tmp_path, how):
    env = {**os.environ, "PYTHONPATH": SRC, "PIXELGEN_CACHE": str(tmp_path / "cache")}
    env.pop("PIXELGEN_NATIVE", None)
    if how == "no compiler":
        env["CXX"] = str(tmp_path / "no-such-compiler")
    else:
        env["PIXELGEN_NATIVE"] = "0"
    first = _layer_in_subprocess(env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[-1]) is False
    lines = first.stderr.strip().splitlines()
    if how == "turned off":
        assert lines == [] and not (tmp_path / "cache").exists()  # never tried to build
        return
    assert len(lines) == 1 and "Python ones run" in lines[0], first.stderr  # no traceback
    again = _layer_in_subprocess(env)  # told once: the failure is remembered, not retried
    assert again.returncode == 0 and again.stderr.strip() == ""


@needs_native
@pytest.mark.parametrize("cls", [RowLSTM, DiagonalBiLSTM])
def test_flop_counter_sees_the_native_products(cls):
    """``make bench`` counts FLOPs with FlopCounterMode: the same on both paths."""
    from torch.utils.flop_counter import FlopCounterMode

    layer = cls(in_channels=8, hidden=4, colours=1)
    x = torch.randn(2, 8, 5, 6)
    counts = []
    for on in (True, False):
        with native.forced(on), FlopCounterMode(display=False) as counter:
            layer(x).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0


def test_a_lock_left_by_a_killed_build_does_not_hang_the_next(tmp_path, monkeypatch):
    """torch's build lock is a plain file (``cpp_extension``'s FileBaton): a build killed
    outright leaves it, and every later build would wait on it for ever. The builds are
    serialized by a lock the system releases with its process, under which a leftover
    file of torch's is stale and removed."""
    from torch.utils import cpp_extension

    monkeypatch.setenv("PIXELGEN_CACHE", str(tmp_path))
    monkeypatch.delenv("PIXELGEN_NATIVE", raising=False)
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_module", None)
    folder = native.cache_dir()
    folder.mkdir(parents=True)
    (folder / "lock").write_text("")  # what a build killed by SIGKILL leaves
    built = object()

    def load(*, build_directory, **kw):
        assert not (Path(build_directory) / "lock").exists()  # torch would wait on it
        return built

    monkeypatch.setattr(cpp_extension, "load", load)
    monkeypatch.setattr(native.shutil, "which", lambda _: "/usr/bin/c++")
    assert native.load() is built


def test_a_build_for_the_processor_is_keyed_by_the_processor(monkeypatch):
    """A library built with -march=native must not be reused by a machine with another
    processor (a shared home folder): the key covers the processor then, and only then."""
    monkeypatch.setattr(native, "CFLAGS", ("-O3", "-march=native"))
    monkeypatch.setattr(native, "_processor", lambda: "flags: avx2 fma")
    here = native._name()
    monkeypatch.setattr(native, "_processor", lambda: "flags: avx512f avx2 fma")
    assert native._name() != here
    monkeypatch.setattr(native, "CFLAGS", ("-O3",))
    portable = native._name()
    monkeypatch.setattr(native, "_processor", lambda: "flags: avx2 fma")
    assert native._name() == portable

"""The allocator setting of ``pixelgen.runtime``: applied where it can be, and effective."""

from __future__ import annotations

import ctypes
import importlib
import subprocess
import sys
import textwrap

import pytest

import pixelgen.runtime as runtime

cli_app = importlib.import_module("pixelgen.cli.app")  # the package exports `app` too

# A child process allocates 64 MiB with malloc and reports how many bytes glibc served
# through mmap for it (growth of mallinfo2().hblkhd), then frees it and reports how much
# the heap grew meanwhile and kept (mallinfo2().arena, plus the free space it already had):
# all mmap and no heap growth by default; no mmap, and the heap kept after the free, once
# tuned.
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from pixelgen.runtime import tune_allocator

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks "
            "keepcost").split()]

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = Info
    tuned = tune_allocator() if sys.argv[1] == "tune" else False
    before = libc.mallinfo2()
    p = libc.malloc(64 << 20)
    ctypes.memset(p, 1, 64 << 20)
    mmapped = libc.mallinfo2().hblkhd - before.hblkhd
    libc.free(p)
    # The block may reuse free space the heap already had (before.fordblks), so what the
    # heap holds for it is its growth plus that space.
    print(int(tuned), mmapped, libc.mallinfo2().arena - before.arena + before.fordblks)
    """
)

glibc = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallinfo2")
MIB64 = 64 << 20


def _probe(mode: str, env_value: str | None, monkeypatch) -> tuple[int, int, int]:
    if env_value is None:
        monkeypatch.delenv("PIXELGEN_MALLOC", raising=False)
    else:
        monkeypatch.setenv("PIXELGEN_MALLOC", env_value)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    tuned, mmapped, heap_kept = (int(v) for v in out)
    return tuned, mmapped, heap_kept


@pytest.mark.skipif(not glibc, reason="glibc only")
def test_tuned_large_blocks_come_from_the_heap_and_stay(monkeypatch):
    tuned, mmapped, heap_kept = _probe("tune", None, monkeypatch)
    assert tuned == 1
    assert mmapped == 0, "tuned, yet the block came from mmap"
    assert heap_kept >= MIB64, "tuned, yet the heap was trimmed after the free"


@pytest.mark.skipif(not glibc, reason="glibc only")
def test_default_allocator_uses_mmap(monkeypatch):
    tuned, mmapped, heap_kept = _probe("default", None, monkeypatch)
    assert tuned == 0 and mmapped >= MIB64 and heap_kept < MIB64


@pytest.mark.skipif(not glibc, reason="glibc only")
@pytest.mark.parametrize("value", ["default", "0", "off"])
def test_opt_out_leaves_the_allocator_alone(value, monkeypatch):
    tuned, mmapped, _ = _probe("tune", value, monkeypatch)
    assert tuned == 0 and mmapped >= MIB64


def test_opt_out_returns_false(monkeypatch):
    monkeypatch.setenv("PIXELGEN_MALLOC", "default")
    assert runtime.tune_allocator() is False


def test_the_command_line_entry_point_tunes_the_allocator(monkeypatch):
    calls = []
    monkeypatch.setattr(cli_app, "tune_allocator", lambda: calls.append(1) or True)
    monkeypatch.setattr(sys, "argv", ["pixelgen", "models"])
    with pytest.raises(SystemExit) as exc:
        cli_app.entry()
    assert exc.value.code == 0 and calls == [1]

"""The allocator setting of ``pixelgen.runtime``: applied where it can be, and effective."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import pixelgen.runtime as runtime

# A child process allocates 64 MiB with malloc and reports how many bytes glibc served
# through mmap for it (growth of mallinfo2().hblkhd): all of it by default, none once tuned.
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
    libc.mallinfo2.restype = Info
    tuned = tune_allocator() if sys.argv[1] == "tune" else False
    before = libc.mallinfo2().hblkhd
    p = libc.malloc(64 << 20)
    print(int(tuned), libc.mallinfo2().hblkhd - before)
    """
)

glibc = sys.platform.startswith("linux") and hasattr(__import__("ctypes").CDLL(None), "mallinfo2")


@pytest.mark.skipif(not glibc, reason="glibc only")
@pytest.mark.parametrize("mode", ["tune", "default"])
def test_large_allocations_leave_mmap_only_when_tuned(mode, monkeypatch):
    monkeypatch.delenv("PIXELGEN_MALLOC", raising=False)
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    tuned, mmapped = int(out[0]), int(out[1])
    if mode == "tune":
        assert tuned == 1 and mmapped == 0, "tuned, yet the block came from mmap"
    else:
        assert tuned == 0 and mmapped >= 64 << 20


def test_opt_out(monkeypatch):
    monkeypatch.setenv("PIXELGEN_MALLOC", "default")
    assert runtime.tune_allocator() is False

"""Process-wide settings that make training and evaluation faster on CPU.

:func:`tune_allocator` keeps glibc's ``malloc`` from handing every large tensor back to
the kernel. By default each allocation over the (adaptive) mmap threshold gets fresh
pages from ``mmap`` and returns them on ``free``, so a training step that allocates and
frees gigabytes of activations pays a page fault and a page clear for every 4 KiB it
touches, every step. Serving large blocks from the heap and never trimming it turns
those into reused memory (measured in the README, "Speed", with
``benchmarks/bench_allocator.py``). The price is that the process keeps its peak heap
until it exits, which is what a training run needs anyway.

The command line calls it once at start-up; library users may call it themselves.
``PIXELGEN_MALLOC=default`` (or ``0``, ``off``) leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

#: glibc stores the trim threshold as a ``size_t``: -1 becomes SIZE_MAX, never trim. (The
#: largest positive int, 2 GiB, would still hand back the heap of a model whose step
#: frees more than that, only to fault it in again next step.)
_NEVER = -1

_OFF = ("default", "0", "off")


def tune_allocator() -> bool:
    """Serve large allocations from the heap and keep it (glibc only).

    Returns True when the settings were applied, False where they do not apply (not
    Linux/glibc, or ``PIXELGEN_MALLOC=default``). Calling it again changes nothing.
    """
    if os.environ.get("PIXELGEN_MALLOC", "").lower() in _OFF:
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)  # glibc has it; musl and others do not
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER))

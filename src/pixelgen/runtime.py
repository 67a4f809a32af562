"""Process-wide settings that make training and evaluation faster on CPU.

:func:`tune_allocator` keeps glibc's ``malloc`` from handing every large tensor back to
the kernel. By default each allocation over the (adaptive) mmap threshold gets fresh
pages from ``mmap`` and returns them on ``free``, so a training step that allocates and
frees gigabytes of activations pays a page fault and a page clear for every 4 KiB it
touches, every step. Serving large blocks from the heap and never trimming it turns
those into reused memory. Measured on 2 CPU cores (README, "Speed"), a CIFAR-10 Diagonal
BiLSTM training step went from 8.6 s to 7.7 s, and that of the plain reference layers,
which allocate far more, from 51.7 s to 21.6 s. The price is that the process keeps its
peak heap until it exits, which is what a training run needs anyway.

The command line calls it once at start-up; library users may call it themselves.
``PIXELGEN_MALLOC=default`` leaves the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

#: glibc stores the trim threshold as a ``size_t``: -1 becomes SIZE_MAX, never trim. (The
#: largest positive int, 2 GiB, would still hand back the heap of a model whose step
#: frees more than that, only to fault it in again next step.)
_NEVER = -1


def tune_allocator() -> bool:
    """Serve large allocations from the heap and keep it (glibc only).

    Returns True when the settings were applied, False where they do not apply (not
    Linux/glibc, or ``PIXELGEN_MALLOC=default``). Calling it again changes nothing.
    """
    if os.environ.get("PIXELGEN_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER))

"""The native (C++) recurrence scans and sampling steps: built on first use, the Python
code as the fallback.

``csrc/recurrences.cpp`` runs the whole forward and the whole backward scan of the Row LSTM
and of the Diagonal BiLSTM in one call each (see its header for why); ``csrc/steppers.cpp``
runs the body of a fast sampling step at one pixel in one call (``sampling/native_body.py``
decides where). One extension holds both. It is compiled with
``torch.utils.cpp_extension`` the first time a layer needs it (about a minute), into
``$XDG_CACHE_HOME/pixelgen/native/<key>`` (``~/.cache`` by default; ``PIXELGEN_CACHE``
overrides the root). The key covers the source, the flags, torch and Python (and the
processor where the build targets it, see CFLAGS), so an upgrade builds afresh, and later
processes import the built library directly, without the compiler. Concurrent first uses
wait for one build (a lock in that folder that the system releases with its process, so a
killed build does not leave later ones waiting).

Where it cannot be built (no compiler, no ninja, a failed compile) the Python scans run,
which compute the same values. The reason is printed once, as one line on stderr, and
kept in the cache folder so later processes neither retry nor repeat the notice.
``PIXELGEN_NATIVE=0`` forces the Python scans (and never builds); :func:`forced` does the
same within a ``with`` block, for tests and benchmarks.

:func:`usable` decides per call: float32 or float64 tensors on the CPU, not under tracing
(``pixelgen export`` traces the plain loops) nor ``torch.compile`` (``train.compile``,
which traces the Python scans as before). Everything else (bfloat16 under autocast,
CUDA) takes the Python scans.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import sys
import sysconfig
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

try:
    import fcntl
except ImportError:  # not on Windows: torch's lock alone serializes the builds there
    fcntl = None  # type: ignore[assignment]

SOURCES = tuple(
    Path(__file__).resolve().parent / "csrc" / name for name in ("recurrences.cpp", "steppers.cpp")
)
# On x86-64 the library is built for the processor it runs on (AVX2 and FMA where there),
# so that the sampling steps' register tiles and the scans' loops use its vector width
# (README, Speed: the figures). The key then covers the processor too (_processor), so a
# cache shared by different machines builds per machine.
_X86 = platform.machine().lower() in ("x86_64", "amd64")
CFLAGS = ("-O3", "-march=native") if _X86 else ("-O3",)
_DTYPES = (torch.float32, torch.float64)

_lock = threading.Lock()
_module: ModuleType | None = None
_tried = False
_override: bool | None = None  # set by forced()


def enabled() -> bool:
    """Whether the native scans may run: not turned off by ``PIXELGEN_NATIVE=0`` or
    :func:`forced`, and built (building them now if needed)."""
    if _override is False or (_override is None and os.environ.get("PIXELGEN_NATIVE") == "0"):
        return False
    return load() is not None


def usable(*tensors: torch.Tensor) -> bool:
    """Whether a scan over ``tensors`` runs natively (see the module docstring)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False  # tracers and torch.compile see through the Python scans, not C++
    if not all(t.device.type == "cpu" and t.dtype in _DTYPES for t in tensors):
        return False
    if len({t.dtype for t in tensors}) != 1:
        return False
    return enabled()


@contextlib.contextmanager
def forced(on: bool) -> Iterator[None]:
    """Within the block, the native scans run (``on``, where built) or never do."""
    global _override
    before, _override = _override, on
    try:
        yield
    finally:
        _override = before


def cache_dir() -> Path:
    """Where the built library lives: one folder per source, flag and version key."""
    root = os.environ.get("PIXELGEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "pixelgen",
    )
    return Path(root) / "native" / _name()


def _name() -> str:
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.read_bytes())
    digest.update(" ".join(CFLAGS).encode())
    digest.update(torch.__version__.encode())
    digest.update(sys.version.encode())
    digest.update((sysconfig.get_platform()).encode())
    if "-march=native" in CFLAGS:
        digest.update(_processor().encode())
    return f"pixelgen_native_{digest.hexdigest()[:16]}"


def _processor() -> str:
    """What ``-march=native`` builds for: the model and instruction sets in
    ``/proc/cpuinfo`` (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as handle:
            lines = [line for line in handle if line.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def load() -> ModuleType | None:
    """The extension module, built if needed; None where it cannot be (see module doc)."""
    global _module, _tried
    if _tried:
        return _module
    with _lock:
        if not _tried:
            _module = _load_or_build()
            _tried = True
    return _module


def _load_or_build() -> ModuleType | None:
    name = _name()
    folder = cache_dir()
    failed = folder / "failed.txt"
    if failed.is_file():  # told once already, by the process that tried
        return None
    built = folder / f"{name}.so"
    if built.is_file():
        try:
            return _import(name, built)
        except Exception:  # a damaged or foreign file: build it again below
            pass
    try:
        with _build_lock(folder):
            if failed.is_file():  # another process failed while this one waited
                return None
            if built.is_file():  # another process built it while this one waited
                with contextlib.suppress(Exception):
                    return _import(name, built)
            return _build(name, folder)
    except Exception as exc:  # a machine without a working compiler: the Python scans
        reason = _reason(exc)
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            failed.write_text(reason + "\n")
        print(
            "pixelgen: the native recurrences could not be built, so the Python ones run "
            f"(same results, slower; delete {folder} to try again, PIXELGEN_NATIVE=0 to "
            f"skip the build): {reason}",
            file=sys.stderr,
        )
        return None


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build at a time in ``folder``, across processes. torch's own lock there is a
    plain file (``FileBaton``) that a build killed outright (SIGKILL, out of memory)
    leaves behind, on which every later build would wait for ever. This lock is released
    by the system with its process, so a file of torch's found while holding it is stale
    and is removed."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            (folder / "lock").unlink(missing_ok=True)
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _reason(exc: Exception) -> str:
    """One line: the compiler's first error where there is one, else the exception."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = next((x for x in lines if "error:" in x), lines[0] if lines else type(exc).__name__)
    return " ".join(line.split())[:300]


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(name: str, folder: Path) -> ModuleType:
    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:  # say so plainly rather than through ninja
        raise RuntimeError(f"no C++ compiler: {compiler} not found")
    folder.mkdir(parents=True, exist_ok=True)
    # torch's notes about compiler versions go to its logger and to warnings: quiet both.
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cpp_extension.load(
                name=name,
                sources=[str(p) for p in SOURCES],
                extra_cflags=list(CFLAGS),
                build_directory=str(folder),
                verbose=False,
            )
    finally:
        log.setLevel(level)

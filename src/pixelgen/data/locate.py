"""Finding a data set's files on disk.

Search order: the `root` option, `$PIXELGEN_DATA`, `./data`, the system locations
(`/usr/share/datasets`, where Debian's dataset-* packages install, then
`~/.cache/pixelgen`); each place is tried first through a per-data-set subfolder
(e.g. `fashion-mnist/`) and then directly. MNIST finally falls back to the copy
shipped in the package. Nothing is downloaded unless asked (`pixelgen.data.download`).
A miss is ONE DataError line naming every place searched and how to get the data."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ..errors import DataNotFoundError

T = TypeVar("T")

# Module-level so tests (and packagers) can point them elsewhere.
SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets",)
SHIPPED_DIR = Path(__file__).resolve().parent / "files"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pixelgen"


def search_places(root: str | os.PathLike[str] | None) -> list[tuple[str, Path | None]]:
    """(label, folder) in search order; folder is None where the place is unset."""
    env = os.environ.get("PIXELGEN_DATA")
    places: list[tuple[str, Path | None]] = []
    if root is not None:
        places.append(("root", Path(root).expanduser()))
    places.append(("$PIXELGEN_DATA", Path(env).expanduser() if env else None))
    places.append(("./data", Path.cwd() / "data"))
    places += [("system", Path(d)) for d in SYSTEM_DIRS]
    places.append(("cache", cache_dir()))
    return places


def candidate_dirs(root: str | os.PathLike[str] | None, subdirs: Sequence[str]) -> list[Path]:
    """Existing folders to probe, in order: each place's subfolders, then the place."""
    out: list[Path] = []
    for _, base in search_places(root):
        if base is None:
            continue
        for d in [*(base / s for s in subdirs), base]:
            if d.is_dir() and d not in out:
                out.append(d)
    return out


def describe_search(root: str | os.PathLike[str] | None, subdirs: Sequence[str]) -> str:
    parts = []
    for label, base in search_places(root):
        if base is None:
            parts.append(f"{label} (not set)")
        elif label in ("root", "$PIXELGEN_DATA"):
            parts.append(f"{label} {base}")
        else:
            parts.append(str(base))
    subs = " or ".join(f"{s}/" for s in subdirs)
    return f"{', '.join(parts)} (each directly and in a subfolder {subs})"


def find(
    name: str,
    root: str | os.PathLike[str] | None,
    subdirs: Sequence[str],
    probe: Callable[[Path], T | None],
    *,
    looked_for: str,
    how_to_get: str,
    extra: Sequence[tuple[str, Path]] = (),
) -> tuple[T, Path]:
    """First (probe(folder), folder) where the probe finds the data set.

    `probe` returns None when a folder does not hold the data set, and raises
    DataError when it holds a broken copy. `extra` are last-resort folders
    (label, path), e.g. the shipped MNIST."""
    dirs = candidate_dirs(root, subdirs) + [p for _, p in extra if p.is_dir()]
    for d in dirs:
        found = probe(d)
        if found is not None:
            return found, d
    searched = describe_search(root, subdirs)
    if extra:
        searched += ", " + ", ".join(f"{label} {p}" for label, p in extra)
    raise DataNotFoundError(
        f"data set {name!r} not found: looked for {looked_for} in {searched}; {how_to_get}"
    )

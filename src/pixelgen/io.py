"""Files written so that a process killed at any instant leaves the old one whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def atomic_write(path: str | Path, write, *, keep: Path | None = None) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it over.
    With ``keep``, the file being replaced is kept as ``keep`` (through a hard link, so
    that ``path`` exists at every moment)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep is not None and path.exists():
            _keep(path, keep)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _keep(path: Path, keep: Path) -> None:
    """Make ``keep`` a copy of ``path`` atomically, leaving ``path`` in place."""
    fd, link = tempfile.mkstemp(prefix=f".{keep.name}.", suffix=".tmp", dir=keep.parent)
    os.close(fd)
    os.unlink(link)
    try:
        try:
            os.link(path, link)  # the same file under a second name: no copy, no gap
        except OSError:  # a file system without hard links
            shutil.copy2(path, link)
        os.replace(link, keep)
    except BaseException:
        Path(link).unlink(missing_ok=True)
        raise

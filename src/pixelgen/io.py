"""Files written so that a process killed at any instant leaves the old one whole, and a
full disk (or any failed write) is one clear error that leaves nothing behind."""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from .errors import StorageError


def atomic_write(
    path: str | Path, data: bytes | Callable[[BinaryIO], object], *, keep: Path | None = None
) -> None:
    """Write ``data`` (bytes, or a function called on the open file) to a temporary file
    beside ``path``, fsync it, rename it over. With ``keep``, the file being replaced is
    kept as ``keep`` (through a hard link, so that ``path`` exists at every moment).

    Any ``OSError`` (a full disk, a read-only folder) removes the temporary file, leaves
    ``path`` as it was, and becomes a one-line :class:`StorageError` that says how much
    space the write needed and how much was free."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would hide the file from the group
            try:
                os.fchmod(fd, _mode(path))
            except OSError:  # a file system without modes: its own default stays
                pass
        with os.fdopen(fd, "wb") as f:
            data(f) if callable(data) else f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep is not None and path.exists():
            _keep(path, keep)
        _note_replaced(path)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        written = _discard(tmp)
        needed = len(data) if isinstance(data, bytes | bytearray | memoryview) else None
        raise storage_error(path, exc, needed=needed, written=written) from None
    except BaseException:
        _discard(tmp)
        raise
    _sync_dir(path.parent)  # the rename itself survives a power cut


# The all_or_none blocks in progress: {path written: its backup (None: it was new)}.
_BACKUPS: ContextVar[dict[Path, Path | None] | None] = ContextVar("_BACKUPS", default=None)


def _note_replaced(path: Path) -> None:
    """Inside ``all_or_none``: keep the file about to be replaced, to put it back if the
    block fails."""
    backups = _BACKUPS.get()
    if backups is None or path in backups:
        return
    if path.exists():
        fd, backup = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".bak", dir=path.parent)
        os.close(fd)
        os.unlink(backup)
        _link_or_copy(path, Path(backup))
        backups[path] = Path(backup)
    else:
        backups[path] = None


@contextmanager
def all_or_none(written: list[Path]) -> Iterator[list[Path]]:
    """For a command that writes several files: if the block fails, every file it wrote
    through :func:`atomic_write` is put back as it was (removed if it is new, the earlier
    file restored if it replaced one), so the command leaves all its outputs or none.
    ``written`` (the caller's list of outputs) is yielded back."""
    backups: dict[Path, Path | None] = {}
    token = _BACKUPS.set(backups)
    try:
        yield written
    except BaseException:
        for path, backup in backups.items():
            if backup is None:
                path.unlink(missing_ok=True)
            else:
                os.replace(backup, path)
        raise
    else:
        for backup in backups.values():
            if backup is not None:
                backup.unlink(missing_ok=True)
    finally:
        _BACKUPS.reset(token)


def save_png(image, path: str | Path) -> Path:
    """Write a PIL image as a PNG, atomically (a torn PNG is never left behind)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())
    return Path(path)


def storage_error(
    path: Path,
    exc: OSError,
    *,
    needed: int | None = None,
    written: int = 0,
    kept: str | None = None,
) -> StorageError:
    """``path: cannot write (reason): needs N, M free; the previous file is unchanged``
    (or ``kept``). Its ``full`` says whether the disk or the quota was full."""
    reason = exc.strerror or type(exc).__name__
    msg = f"{path}: cannot write ({reason})"
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if full:
        want = f"{_size(needed)}" if needed is not None else f"more than {_size(written)}"
        msg += f": it needs {want} and {_size(free_bytes(path.parent))} is free"
    if kept is None:
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
    err = StorageError(f"{msg}; {kept}")
    err.full = full
    return err


def free_bytes(folder: Path) -> int:
    """Free space for this user on the file system holding ``folder`` (0 if unknown)."""
    for p in (folder, *folder.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return 0
    return 0


def _size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def _read_umask() -> int:
    # Read once, at import: setting and restoring it later would race other threads.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _mode(path: Path) -> int:
    """The mode of the file being replaced, else what ``open()`` would give (0666 less
    the umask)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_UMASK


def _discard(tmp: str | None) -> int:
    """Remove a temporary file; returns how many bytes it held."""
    if tmp is None:
        return 0
    try:
        size = os.stat(tmp).st_size
        os.unlink(tmp)
    except OSError:
        return 0
    return size


def _sync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
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
        _link_or_copy(path, Path(link))
        os.replace(link, keep)
    except BaseException:
        Path(link).unlink(missing_ok=True)
        raise


def _link_or_copy(path: Path, other: Path) -> None:
    """``other`` becomes the same file as ``path`` under a second name (no copy, no gap),
    or a copy of it on a file system without hard links."""
    try:
        os.link(path, other)
    except OSError:
        shutil.copy2(path, other)

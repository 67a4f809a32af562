"""One writer per run directory: ``train`` holds an exclusive OS lock on ``RUN/.lock`` for
the whole run, so a second ``train`` on the same directory is refused, and a killed process
releases it by dying. Readers (``eval``, ``sample``, ``export``) never take it: checkpoints
are replaced atomically, so they never see a half-written one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import TrainingError

NAME = ".lock"


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / NAME
        self.fd: int | None = None
        self.created: list[Path] = []  # what acquire made: the lock file, then new folders

    def acquire(self) -> None:
        folder = self.path.parent
        new = [p for p in (folder, *folder.parents) if not p.exists()]
        self.created = [] if self.path.exists() else [self.path, *new]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TrainingError(f"{self.path}: cannot create the run's lock ({exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise TrainingError(
                f"{self.path.parent} is being trained by process {holder} (it holds "
                f"{self.path}); wait for it to end or stop it, or choose another --out"
            ) from None
        except OSError as exc:  # e.g. no locks on this file system
            os.close(fd)
            raise TrainingError(f"{self.path}: cannot lock the run directory ({exc})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None

    def abandon(self) -> None:
        """Release the lock of a run that failed to start, removing the lock file and the
        folders ``acquire`` created (those left empty), so that nothing is left behind."""
        if self.fd is None:
            return
        # Removed while still held: a train starting now finds no lock file to take over
        # (or locks a fresh one), never the one being removed.
        for path in self.created:
            try:
                path.rmdir() if path.is_dir() else path.unlink()
            except OSError:  # a folder that holds something else stays
                break
        self.release()

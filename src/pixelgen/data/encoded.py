"""Image sets decoded on access from encoded files (PNG/JPEG): a list of files on
disk, or members of an uncompressed tar archive indexed once and read by offset,
so a 1.28M-image archive is never extracted or held in memory."""

from __future__ import annotations

import functools
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .base import ImageSet
from .decode import IMAGE_SUFFIXES, Conform

# (member name, data offset, size) per image.
TarEntry = tuple[str, int, int]


def index_tar(path: str | os.PathLike[str]) -> list[TarEntry]:
    """Image members of an uncompressed tar, sorted by name (cached per process)."""
    p = Path(path).resolve()
    st = p.stat()
    return list(_index_tar(str(p), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _index_tar(path: str, size: int, mtime_ns: int) -> tuple[TarEntry, ...]:
    entries: list[TarEntry] = []
    try:
        with tarfile.open(path, "r:") as tar:
            while (m := tar.next()) is not None:
                if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES):
                    entries.append((m.name, m.offset_data, m.size))
                # tarfile keeps every TarInfo it has read; drop them so indexing a
                # huge archive stays at a few dozen bytes per member.
                tar.members.clear()
    except tarfile.ReadError as e:
        raise DataError(
            f"cannot index {path} as an uncompressed tar ({e}); unpack it into a folder instead"
        ) from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from None
    entries.sort()
    return tuple(entries)


class FileImageSet(ImageSet):
    """One image per file, decoded on access."""

    def __init__(self, files: list[Path], conform: Conform, **kw: Any) -> None:
        self.files = [str(f) for f in files]
        self.conform = conform
        super().__init__(**kw)

    def __len__(self) -> int:
        return len(self.files)

    def _image(self, i: int) -> np.ndarray:
        return self.conform(self.files[i], self.files[i])


class TarImageSet(ImageSet):
    """One image per member of an uncompressed tar, read by offset on access."""

    def __init__(self, tar_path: Path, entries: list[TarEntry], conform: Conform, **kw: Any):
        self.tar_path = str(tar_path)
        self.entries = entries
        self.conform = conform
        super().__init__(**kw)

    def __len__(self) -> int:
        return len(self.entries)

    def _handle(self):
        # One handle per process: a handle inherited through fork shares its file
        # position with the parent, so reads from several workers would race.
        if getattr(self, "_cache_pid", None) != os.getpid():
            self._cache_fh = open(self.tar_path, "rb")  # noqa: SIM115 - kept open on purpose
            self._cache_pid = os.getpid()
        return self._cache_fh

    def _image(self, i: int) -> np.ndarray:
        name, offset, size = self.entries[i]
        fh = self._handle()
        fh.seek(offset)
        data = fh.read(size)
        if len(data) != size:
            raise DataError(f"{self.tar_path} is truncated (member {name}); download it again")
        return self.conform(data, f"{self.tar_path}:{name}")

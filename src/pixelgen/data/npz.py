"""Arrays inside .npz files without loading them whole: `np.load` ignores
`mmap_mode` for .npz, so for an uncompressed (stored) member we find where its .npy
data starts in the zip and memory-map it ourselves. Compressed members are loaded
into memory on first use."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

_LOCAL_HEADER = b"PK\x03\x04"


@dataclass(frozen=True)
class NpzMember:
    path: str
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int | None  # byte offset of the raw array in the file; None if compressed

    def load(self) -> np.ndarray:
        """Memory map (stored member) or in-memory array (compressed member)."""
        if self.offset is not None:
            order = "F" if self.fortran else "C"
            return np.memmap(
                self.path,
                dtype=self.dtype,
                mode="r",
                offset=self.offset,
                shape=self.shape,
                order=order,
            )
        try:
            with np.load(self.path, allow_pickle=False) as z:
                return z[self.key]
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise DataError(f"cannot read {self.key!r} from {self.path}: {e}") from None


def inspect_member(path: str | os.PathLike[str], key: str) -> NpzMember:
    """Shape, dtype and location of array `key` in an .npz, reading only headers."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            try:
                info = zf.getinfo(key + ".npy")
            except KeyError:
                have = ", ".join(n.removesuffix(".npy") for n in zf.namelist())
                raise DataError(f"{p} has no array {key!r} (it has: {have})") from None
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                header_len = f.tell()
        offset = None
        if info.compress_type == zipfile.ZIP_STORED:
            with open(p, "rb") as raw:
                raw.seek(info.header_offset)
                local = raw.read(30)
            if local[:4] != _LOCAL_HEADER:
                raise DataError(f"{p}: bad zip local header for {key}.npy; the file is corrupt")
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            offset = info.header_offset + 30 + name_len + extra_len + header_len
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {p} as an .npz file: {e}; download it again") from None
    if dtype.hasobject:
        raise DataError(f"{p}: array {key!r} holds Python objects; refusing to load it")
    return NpzMember(str(p), key, tuple(shape), dtype, fortran, offset)

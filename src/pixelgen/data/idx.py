"""Reading IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or not.

Layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions, one
big-endian int32 per dimension, then the raw row-major data. Gzip files are
decompressed once per process and kept; plain files are memory-mapped."""

from __future__ import annotations

import functools
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

_UBYTE = 0x08


def _parse_header(head: bytes, path: Path) -> tuple[int, tuple[int, ...]]:
    """(header length in bytes, shape) of an IDX file whose first bytes are `head`."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); replace it")
    dtype_code, ndim = head[2], head[3]
    if dtype_code != _UBYTE:
        raise DataError(f"{path}: IDX data type 0x{dtype_code:02x} is not supported (need uint8)")
    end = 4 + 4 * ndim
    if ndim == 0 or len(head) < end:
        raise DataError(f"{path}: truncated IDX header; replace the file")
    shape = struct.unpack(f">{ndim}i", head[4:end])
    return end, tuple(shape)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The file's array (read-only uint8), shape as stored, e.g. (60000, 28, 28)."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as e:
        raise DataError(f"cannot read IDX file {p}: {e.strerror}") from None
    return _read_idx(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_idx(path: str, size: int, mtime_ns: int) -> np.ndarray:
    # size and mtime are part of the key so a replaced file is read again.
    p = Path(path)
    try:
        if _is_gzip(p):
            with gzip.open(p, "rb") as f:
                raw = f.read()
            offset, shape = _parse_header(raw[:64], p)
            data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
        else:
            with open(p, "rb") as f:
                head = f.read(64)
            offset, shape = _parse_header(head, p)
            data = np.memmap(p, dtype=np.uint8, mode="r", offset=offset)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read IDX file {p}: {e}; replace the file") from None
    count = int(np.prod(shape))
    if data.size != count:
        raise DataError(
            f"{p}: IDX header says {'x'.join(map(str, shape))} = {count} bytes of data "
            f"but the file holds {data.size}; the file is truncated or corrupt"
        )
    return data.reshape(shape)

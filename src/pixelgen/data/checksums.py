"""File checksums: `verify_sha256` (used on the MNIST copy shipped in the package)
and the published checksums we know, kept in one place for a future download step."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import DataError

# sha256 of the gzip files shipped in src/pixelgen/data/files/mnist/ (see its README).
_SHIPPED_TABLE = """
train-images-idx3-ubyte.gz 0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971
train-labels-idx1-ubyte.gz 1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203
t10k-images-idx3-ubyte.gz 1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be
t10k-labels-idx1-ubyte.gz b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b
"""
SHIPPED_MNIST_SHA256 = dict(line.split() for line in _SHIPPED_TABLE.strip().splitlines())

# Checksums published by the data sets' authors: (algorithm, hex digest) per file.
# Not checked on load (users' copies may be recompressed, e.g. Debian's Fashion-MNIST);
# kept for a download/verify command.
PUBLISHED = {
    "cifar10": {"cifar-10-python.tar.gz": ("md5", "c58f30108f718f92721af3b95e74349a")},
}

# Per-process cache: (resolved path, size, mtime_ns, expected) -> verified. Hashing
# the 11 MB of shipped MNIST once per process is cheap; every load is not.
_VERIFIED: set[tuple[str, int, int, str]] = set()


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Raise DataError unless the file's sha256 is `expected` (cached per process)."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror}") from None
    key = (str(p), st.st_size, st.st_mtime_ns, expected.lower())
    if key in _VERIFIED:
        return
    actual = file_digest(p)
    if actual != expected.lower():
        raise DataError(
            f"checksum mismatch for {p}: sha256 {actual}, expected {expected}; "
            "the file is corrupt or was replaced: restore it (reinstall pixelgen)"
        )
    _VERIFIED.add(key)

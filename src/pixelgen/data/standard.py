"""The standard binarized MNIST (``data.binarize: standard``): the one fixed binarization
of Larochelle & Murray (2011) that the paper's 79.20 nats and most later figures are
measured on, published as three text files of 784 values 0/1 per line
(``binarized_mnist_train.amat``, ``_valid.amat``, ``_test.amat``: 50,000, 10,000 and
10,000 images). ``pixelgen download binarized_mnist`` (or ``data.download: true``) fetches
them; the splits are the published ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import locate
from .base import ArrayImageSet, ImageSet

SUBDIRS = ("binarized_mnist", "binarized-mnist", "BinarizedMNIST")
COUNTS = {"train": 50000, "valid": 10000, "test": 10000}


def file_name(split: str) -> str:
    return f"binarized_mnist_{split}.amat"


def read_amat(path: Path) -> np.ndarray:
    """(N, 784) uint8 of 0/1 from an .amat file; anything else is a one-line DataError."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    chars = np.frombuffer(text, np.uint8)
    lines = int(np.count_nonzero(chars == ord("\n"))) + (0 if text.endswith(b"\n") else 1)
    # Every other byte is a separator: the values are the bytes that are not whitespace.
    values = chars[~np.isin(chars, np.frombuffer(b" \t\r\n", np.uint8))]
    if values.size != lines * 784 or np.any((values != ord("0")) & (values != ord("1"))):
        raise DataError(
            f"{path}: not a binarized MNIST .amat file ({lines} lines, {values.size} values; "
            "expected 784 values of 0 or 1 per line); fetch it again with "
            "`pixelgen download binarized_mnist`"
        )
    return (values - ord("0")).reshape(lines, 784)


def open_standard(split: str, root: str | None, opts: dict) -> ImageSet:
    valid_size = opts.get("valid_size")
    if valid_size not in (None, COUNTS["valid"]):
        raise ConfigError(
            f"data.valid_size: the standard binarization has its own {COUNTS['valid']} "
            f"validation images; remove data.valid_size (got {valid_size})"
        )
    name = file_name(split)
    path, _ = locate.find(
        "binarized_mnist (standard)",
        root,
        SUBDIRS,
        lambda d: d / name if (d / name).is_file() else None,
        looked_for=name,
        how_to_get="run `pixelgen download binarized_mnist` (or set data.download: true)",
    )
    binary = read_amat(path)
    n = binary.shape[0]
    desc = (
        f"binarized_mnist {split}: {n} images 1x28x28, 2 levels, the standard fixed "
        f"binarization (Larochelle & Murray 2011) from {path}"
    )
    return ArrayImageSet(
        binary.reshape(n, 1, 28, 28),
        levels=2,
        description=desc,
        name="binarized_mnist",
        split=split,
        channels=1,
        height=28,
        width=28,
        sources=[path],
        options=opts,
        labels=None,
        no_labels="the standard binarization (Larochelle & Murray 2011) is published without "
        "labels; data.binarize: static or dynamic draws from MNIST, labels included",
    )

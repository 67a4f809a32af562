"""Data sets for Pixel RNN training and evaluation (paper §5.1): MNIST, binarized
MNIST, Fashion-MNIST, CIFAR-10, downsampled ImageNet 32/64 and any image folder.

    ds = load_split("binarized_mnist", "train", binarize="dynamic")
    x = ds[0]            # uint8 (C, H, W), values in [0, ds.levels)
    ds.set_epoch(3)      # before each epoch (dynamic binarization)

One loader module per data set; `catalog` validates names, splits and options and
`locate` finds the files."""

from __future__ import annotations

from .base import SPLITS, ImageSet
from .catalog import list_datasets, load_split
from .checksums import verify_sha256

__all__ = ["SPLITS", "ImageSet", "list_datasets", "load_split", "verify_sha256"]

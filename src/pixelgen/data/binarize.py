"""Binarized MNIST (paper §5.1, "the standard binarized MNIST"): each pixel is one
Bernoulli draw with p = intensity / 255.

Static binarization draws once, with a fixed seed, over the whole published file,
so an image's binary version does not depend on the train/valid carve and is the
same in every process. Dynamic binarization (training only) draws afresh each
epoch from a generator keyed by (seed, epoch, image index): a resumed or
multi-worker run sees exactly the data an uninterrupted one would."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from .base import ArrayImageSet

_CHUNK = 8192  # images per draw, to bound the float buffer (8192 * 784 * 4 B = 25 MB)
_STATIC, _DYNAMIC = 0, 1  # stream tags so static and dynamic draws never coincide
_CACHE_SIZE = 4
_STATIC_CACHE: dict[Hashable, np.ndarray] = {}


def _generator(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))


def _bernoulli(gray: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    # u < x/255 written as u*255 < x keeps p(1) exactly 0 for x = 0 and 1 for x = 255.
    return (uniform * np.float32(255.0) < gray).astype(np.uint8)


def static_binarize(gray: np.ndarray, *, seed: int, stream: int, source: Hashable) -> np.ndarray:
    """One fixed draw for every image of `gray` (N, ...) uint8, cached per process.

    `stream` tells the published files apart (train 0, test 1) so they get
    independent draws; `source` identifies the file contents for the cache."""
    key = (source, seed, stream)
    cached = _STATIC_CACHE.get(key)
    if cached is not None:
        return cached
    rng = _generator(seed, _STATIC, stream)
    out = np.empty(gray.shape, dtype=np.uint8)
    # Drawn in fixed chunks, in order: the result depends only on (seed, stream).
    for start in range(0, gray.shape[0], _CHUNK):
        block = gray[start : start + _CHUNK]
        out[start : start + _CHUNK] = _bernoulli(block, rng.random(block.shape, np.float32))
    out.flags.writeable = False
    if len(_STATIC_CACHE) >= _CACHE_SIZE:
        _STATIC_CACHE.pop(next(iter(_STATIC_CACHE)))
    _STATIC_CACHE[key] = out
    return out


class DynamicBinarizedSet(ArrayImageSet):
    """Gray images (N, C, H, W) binarized on access; the draw depends on (seed, epoch, row)."""

    def __init__(self, gray: np.ndarray, *, seed: int, stream: int, **kw: Any) -> None:
        self.seed = seed
        self.stream = stream
        super().__init__(gray, **kw)

    def _image(self, i: int) -> np.ndarray:
        row = self.rows[i]
        rng = _generator(self.seed, _DYNAMIC, self.stream, self.epoch, row)
        gray = self.array[row]  # (C, H, W)
        return _bernoulli(gray, rng.random(gray.shape, np.float32))

"""CIFAR-10 (paper §5.1) from the published python version: the folder
`cifar-10-batches-py/` (`data_batch_1..5`, `test_batch`, each a pickled dict with
b"data" (N, 3072) uint8 holding the R, G then B planes row-major, and b"labels"),
or the `cifar-10-python.tar.gz` archive it comes in. Pickles go through the
restricted unpickler in `safe_pickle`. The 60000 images fit in memory."""

from __future__ import annotations

import functools
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from . import locate
from .base import ArrayImageSet, ImageSet, split_rows
from .options import Option, non_negative_int
from .safe_pickle import safe_load

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SIDE = 32


def _probe(d: Path) -> Path | None:
    """The batches folder or the archive inside `d` (or `d` itself being the folder)."""
    for folder in (d / FOLDER, d):
        if all((folder / b).is_file() for b in TRAIN_BATCHES + TEST_BATCHES):
            return folder
    return d / ARCHIVE if (d / ARCHIVE).is_file() else None


def _decode_batch(obj: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(images (N, 3, 32, 32), labels (N,) or None) from one unpickled batch dict."""
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        raise DataError(f"{what} is not a CIFAR-10 batch (expected a dict, got {kind})")
    data = obj.get(b"data", obj.get("data"))
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3 * SIDE * SIDE
    ):
        got = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{what}: b'data' must be a uint8 array (N, 3072), got {got}")
    labels = obj.get(b"labels", obj.get("labels"))
    labels = None if labels is None else np.asarray(labels, dtype=np.int64)
    if labels is not None and labels.shape != (data.shape[0],):
        raise DataError(f"{what}: {labels.shape[0]} labels for {data.shape[0]} images")
    # Each row is the R plane, then G, then B, each 32 rows of 32 pixels.
    return data.reshape(-1, 3, SIDE, SIDE), labels


def _read_batches(source: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    st = source.stat()
    return _read_cached(str(source), st.st_size, st.st_mtime_ns, names)


@functools.lru_cache(maxsize=2)
def _read_cached(
    source: str, size: int, mtime_ns: int, names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray | None]:
    path = Path(source)
    decoded: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if path.is_dir():
        for name in names:
            with open(path / name, "rb") as f:
                decoded[name] = _decode_batch(safe_load(f, str(path / name)), str(path / name))
    else:
        try:
            # One sequential pass: a gzip stream cannot seek cheaply.
            with tarfile.open(path, "r:gz") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in names and base not in decoded:
                        what = f"{path}:{member.name}"
                        f = tar.extractfile(member)
                        assert f is not None  # a regular file member
                        decoded[base] = _decode_batch(safe_load(f.read(), what), what)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"cannot read {path}: {e}; download it again from {URL}") from None
        missing = [n for n in names if n not in decoded]
        if missing:
            raise DataError(f"{path} lacks {', '.join(missing)}; download it again from {URL}")
    images = np.concatenate([decoded[n][0] for n in names])
    labels = [decoded[n][1] for n in names]
    images.flags.writeable = False
    return images, None if any(lab is None for lab in labels) else np.concatenate(labels)


def _open(split: str, root: str | None, opts: dict[str, Any]) -> ImageSet:
    source, _ = locate.find(
        "cifar10",
        root,
        ("cifar10", "cifar-10", "CIFAR10"),
        _probe,
        looked_for=f"{FOLDER}/ or {ARCHIVE}",
        how_to_get=f"download {URL} and put it, or the {FOLDER}/ folder it unpacks to, "
        "in one of those places",
    )
    names = TEST_BATCHES if split == "test" else TRAIN_BATCHES
    images, labels = _read_batches(source, names)
    n = images.shape[0]
    rows, where = split_rows("cifar10", split, n, opts["valid_size"])
    form = "batches folder" if source.is_dir() else "tar.gz archive"
    return ArrayImageSet(
        images,
        rows=rows,
        name="cifar10",
        split=split,
        channels=3,
        height=SIDE,
        width=SIDE,
        levels=256,
        description=f"cifar10 {split}: {len(rows)} images 3x32x32, 256 levels, {where} "
        f"(python {form})",
        sources=[source],
        options=opts,
        labels=None if labels is None else labels[rows.start : rows.stop],
        class_names=None if labels is None else CLASS_NAMES,
        no_labels="its batches carry no labels",
    )


CLASS_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


DATASETS = {
    "cifar10": (
        "CIFAR-10 natural images, 3x32x32, 256 levels (paper §5.1)",
        [
            Option(
                "valid_size",
                5000,
                non_negative_int("valid_size"),
                "images carved off the end of the training set for 'valid'",
            )
        ],
        _open,
    ),
}

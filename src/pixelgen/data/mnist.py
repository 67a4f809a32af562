"""MNIST, binarized MNIST and Fashion-MNIST, from the published IDX files.

MNIST ships inside the package (data/files/mnist/, sha256-checked once per process)
so it works offline; a copy found earlier in the search path wins. Fashion-MNIST
comes from e.g. Debian's `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/,
same file names as MNIST). The "valid" split is the last `valid_size` images of the
60000 training images (default 10000, i.e. the paper's 50k/10k, §5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from . import locate
from .base import ArrayImageSet, ImageSet, split_rows
from .binarize import DynamicBinarizedSet, static_binarize
from .checksums import SHIPPED_MNIST_SHA256, verify_sha256
from .idx import read_idx
from .options import Option, choice, non_negative_int
from .standard import open_standard

# The published class names, in label order.
CLASS_NAMES = {
    "mnist": [str(k) for k in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}  # fmt: skip

_SUBDIRS = {
    "mnist": ("mnist", "MNIST", "MNIST/raw"),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist", "FashionMNIST", "FashionMNIST/raw"),
}
_HOW_TO_GET = {
    "mnist": "reinstall pixelgen (it ships MNIST) or put the four IDX files "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz in one of those places",
    "fashion_mnist": "install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) "
    "or put the Fashion-MNIST IDX files from https://github.com/zalandoresearch/fashion-mnist "
    "(train-images-idx3-ubyte.gz, t10k-images-idx3-ubyte.gz and the labels) in one of those places",
}


def _find_idx(folder: Path, stem: str, kind: str) -> Path | None:
    """`{stem}-{kind}-idx?-ubyte[.gz]`, also the `{stem}-{kind}.idx?-ubyte` spelling."""
    dims = "3" if kind == "images" else "1"
    for base in (f"{stem}-{kind}-idx{dims}-ubyte", f"{stem}-{kind}.idx{dims}-ubyte"):
        for name in (base + ".gz", base):
            if (folder / name).is_file():
                return folder / name
    return None


def _locate(family: str, split: str, root: str | None) -> tuple[Path, Path | None, bool]:
    """(images file, labels file or None, is the shipped copy) for a split."""
    stem = "t10k" if split == "test" else "train"
    name = "mnist" if family == "mnist" else family

    def probe(d: Path) -> tuple[Path, Path | None] | None:
        images = _find_idx(d, stem, "images")
        return None if images is None else (images, _find_idx(d, stem, "labels"))

    extra = [("the copy shipped in pixelgen", locate.SHIPPED_DIR / "mnist")]
    (images, labels), folder = locate.find(
        name,
        root,
        _SUBDIRS[family],
        probe,
        looked_for=f"{stem}-images-idx3-ubyte[.gz]",
        how_to_get=_HOW_TO_GET[family],
        extra=extra if family == "mnist" else (),
    )
    shipped = folder.resolve() == (locate.SHIPPED_DIR / "mnist").resolve()
    if shipped:
        for f in (images, labels):
            if f is not None:
                verify_sha256(f, SHIPPED_MNIST_SHA256[f.name])
    return images, labels, shipped


def _source_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _open(dataset: str, split: str, root: str | None, opts: dict[str, Any]) -> ImageSet:
    if dataset == "binarized_mnist" and opts["binarize"] == "standard":
        return open_standard(split, root, opts)
    family = "fashion_mnist" if dataset == "fashion_mnist" else "mnist"
    images_path, labels_path, _ = _locate(family, split, root)
    gray = read_idx(images_path)  # (N, H, W)
    if gray.ndim != 3:
        raise DataError(f"{images_path}: expected an N x H x W image file, got shape {gray.shape}")
    n, h, w = gray.shape
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path)
        if labels.shape != (n,):
            raise DataError(
                f"{labels_path} holds {labels.shape[0]} labels for {n} images in {images_path}"
            )

    rows, where = split_rows(dataset, split, n, opts["valid_size"])

    meta: dict[str, Any] = dict(
        name=dataset,
        split=split,
        channels=1,
        height=h,
        width=w,
        sources=[p for p in (images_path, labels_path) if p is not None],
        options=opts,
        labels=None if labels is None else labels[rows.start : rows.stop],
        class_names=None if labels is None else CLASS_NAMES[family],
        no_labels=f"no {'t10k' if split == 'test' else 'train'}-labels file beside {images_path}",
        rows=rows,
    )
    shape = f"{len(rows)} images 1x{h}x{w}"
    if dataset != "binarized_mnist":
        desc = f"{dataset} {split}: {shape}, 256 levels, {where}"
        return ArrayImageSet(gray.reshape(n, 1, h, w), levels=256, description=desc, **meta)

    seed = opts["binarize_seed"]
    # valid and test are always statically binarized so scores stay comparable.
    mode = opts["binarize"] if split == "train" else "static"
    stream = 1 if split == "test" else 0
    if mode == "dynamic":
        desc = (
            f"{dataset} {split}: {shape}, 2 levels, dynamic binarization "
            f"(fresh draw each epoch, seed {seed}), {where}"
        )
        return DynamicBinarizedSet(
            gray.reshape(n, 1, h, w), seed=seed, stream=stream, levels=2, description=desc, **meta
        )
    binary = static_binarize(gray, seed=seed, stream=stream, source=_source_key(images_path))
    desc = f"{dataset} {split}: {shape}, 2 levels, static binarization (seed {seed}), {where}"
    return ArrayImageSet(binary.reshape(n, 1, h, w), levels=2, description=desc, **meta)


def _opener(dataset: str):
    def open_split(split: str, root: str | None, opts: dict[str, Any]) -> ImageSet:
        return _open(dataset, split, root, opts)

    return open_split


def _valid_size() -> Option:
    return Option(
        "valid_size",
        10000,
        non_negative_int("valid_size"),
        "images carved off the end of the training set for 'valid'",
    )


DATASETS = {
    "mnist": (
        "MNIST digits, 1x28x28, 256 levels (ships with pixelgen)",
        [_valid_size()],
        _opener("mnist"),
    ),
    "binarized_mnist": (
        "MNIST binarized by Bernoulli sampling, 1x28x28, 2 levels (paper §5.1)",
        [
            _valid_size(),
            Option(
                "binarize",
                "static",
                choice("binarize", ("static", "dynamic", "standard")),
                "static: one fixed draw; dynamic: fresh draw each epoch (train only); "
                "standard: the published fixed binarization (Larochelle & Murray 2011)",
            ),
            Option(
                "binarize_seed",
                0,
                non_negative_int("binarize_seed"),
                "seed of the Bernoulli draws",
            ),
        ],
        _opener("binarized_mnist"),
    ),
    "fashion_mnist": (
        "Fashion-MNIST clothing images, 1x28x28, 256 levels "
        "(apt-get install dataset-fashion-mnist)",
        [_valid_size()],
        _opener("fashion_mnist"),
    ),
}

"""Downsampled ImageNet 32x32 and 64x64 (paper §5.1), in either published form:

- png: the paper's own sets, folders `train_32x32/` and `valid_32x32/` of PNG files
  or the tar archives `train_32x32.tar` / `valid_32x32.tar` (indexed once, decoded
  on access). These are the sets the paper's numbers refer to.
- npz: the batches of Chrabaszcz et al. 2017 (`Imagenet32_train_npz/
  train_data_batch_1..10.npz`, `Imagenet32_val_npz/val_data.npz`; "data" (N, 3*H*W)
  uint8 in R, G, B planes), memory-mapped. They were resized differently, so
  likelihoods on them are not comparable with the paper's.

ImageNet has no public test labels; the paper reports validation numbers, so both
"valid" and "test" read the published validation set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from . import locate
from .base import ImageSet
from .decode import Conform
from .encoded import FileImageSet, TarImageSet, index_tar
from .npz import NpzMember, inspect_member
from .options import Option, choice

NUM_TRAIN_BATCHES = 10
_BATCH = re.compile(r"train_data_batch_(\d+)\.npz$")


def _png_form(d: Path, stem: str) -> tuple[str, Path] | None:
    """("png-folder" | "png-tar", path) for `stem` (e.g. "valid_32x32") inside d."""
    folder = d / stem
    if folder.is_dir() and any(folder.rglob("*.png")):
        return ("png-folder", folder)
    if (d / f"{stem}.tar").is_file():
        return ("png-tar", d / f"{stem}.tar")
    return None


def _npz_train(d: Path, side: int) -> tuple[str, list[Path]] | None:
    # Imagenet64 comes in two parts (batches 1-5 and 6-10), Imagenet32 in one folder.
    folders = [d, *sorted(p for p in d.glob(f"Imagenet{side}_train*") if p.is_dir())]
    found: dict[int, Path] = {}
    for folder in folders:
        for f in folder.glob("train_data_batch_*.npz"):
            m = _BATCH.search(f.name)
            if m:
                found.setdefault(int(m.group(1)), f)
    if not found:
        return None
    missing = [i for i in range(1, NUM_TRAIN_BATCHES + 1) if i not in found]
    if missing:
        raise DataError(
            f"Imagenet{side} npz batches in {d} are incomplete: train_data_batch_"
            f"{','.join(map(str, missing))}.npz missing; download all {NUM_TRAIN_BATCHES}"
        )
    return ("npz", [found[i] for i in sorted(found)])


def _npz_valid(d: Path, side: int) -> tuple[str, list[Path]] | None:
    folders = [*sorted(p for p in d.glob(f"Imagenet{side}_val*") if p.is_dir()), d]
    for folder in folders:
        if (folder / "val_data.npz").is_file():
            return ("npz", [folder / "val_data.npz"])
    return None


class NpzImageSet(ImageSet):
    """Rows of one or more (N, 3*H*W) npz arrays, as (3, H, W) images."""

    def __init__(self, members: list[NpzMember], **kw: Any) -> None:
        self.members = members
        self.starts = np.cumsum([0] + [m.shape[0] for m in members])
        super().__init__(**kw)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _batch(self, b: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_cache_arrays", {})
        if b not in cache:
            cache[b] = self.members[b].load()
        return cache[b]

    def _image(self, i: int) -> np.ndarray:
        b = int(np.searchsorted(self.starts, i, side="right")) - 1
        row = self._batch(b)[i - self.starts[b]]  # (3*H*W,) R plane, G plane, B plane
        return row.reshape(3, self.height, self.width)


def _npz_labels(files: list[Path]) -> np.ndarray | None:
    """The batches' ``labels`` (published 1..1000) as 0..999, or None where one lacks them."""
    out = []
    for f in files:
        try:
            out.append(np.asarray(inspect_member(f, "labels").load(), dtype=np.int64).reshape(-1))
        except DataError:
            return None
    return np.concatenate(out) - 1


def _open_npz(files: list[Path], side: int) -> list[NpzMember]:
    members = []
    for f in files:
        m = inspect_member(f, "data")
        if m.dtype != np.uint8 or len(m.shape) != 2 or m.shape[1] != 3 * side * side:
            raise DataError(
                f"{f}: 'data' is {m.dtype} {m.shape}, expected uint8 (N, {3 * side * side}) "
                f"for Imagenet{side}; is it the {side}x{side} download?"
            )
        members.append(m)
    return members


def _opener(side: int):
    name = f"imagenet{side}"

    def open_split(split: str, root: str | None, opts: dict[str, Any]) -> ImageSet:
        form, where = _locate(name, side, split, root, opts["format"])
        meta: dict[str, Any] = dict(
            name=name, split=split, channels=3, height=side, width=side, levels=256, options=opts
        )
        if form != "npz":  # the paper's PNGs are published without their classes
            meta["no_labels"] = (
                "the paper's PNG form is published without labels; the npz form has them"
            )
        ds, desc = _image_set(form, where, side, meta)
        note = (
            "; valid and test both read the published validation set (the paper reports "
            "validation numbers)"
            if split != "train"
            else ""
        )
        ds.description = (
            f"{name} {split}: {len(ds)} images 3x{side}x{side}, 256 levels, {desc}{note}"
        )
        return ds

    return open_split


def _locate(name: str, side: int, split: str, root: str | None, fmt: str):
    """``(form, where)`` of the split's files: ``png-folder`` or ``png-tar`` (a path) or
    ``npz`` (a list of files), looked for in the usual places (``locate.find``)."""
    png_stem = f"{'train' if split == 'train' else 'valid'}_{side}x{side}"
    npz_files = (
        f"Imagenet{side}_train_npz/train_data_batch_1..{NUM_TRAIN_BATCHES}.npz"
        if split == "train"
        else f"Imagenet{side}_val_npz/val_data.npz"
    )

    def probe(d: Path):
        if fmt in ("auto", "png"):
            found = _png_form(d, png_stem)
            if found:
                return found
        if fmt in ("auto", "npz"):
            return (_npz_train if split == "train" else _npz_valid)(d, side)
        return None

    wanted = {
        "png": f"{png_stem}/ or {png_stem}.tar",
        "npz": npz_files,
        "auto": f"{png_stem}/ or {png_stem}.tar (the paper's PNGs) or {npz_files}",
    }[fmt]
    found, _ = locate.find(
        name,
        root,
        (name, f"imagenet-{side}", f"Imagenet{side}", "imagenet"),
        probe,
        looked_for=wanted,
        how_to_get=f"download the paper's {png_stem}.tar (downsampled ImageNet, "
        f"image-net.org) or the Imagenet{side} npz batches of Chrabaszcz et al. 2017 "
        "and put them in one of those places",
    )
    return found


def _image_set(form: str, where, side: int, meta: dict[str, Any]) -> tuple[ImageSet, str]:
    """The image set of one form, and the words that describe where its images come from."""
    conform = Conform(channels=3, height=side, width=side, resize=False)
    if form == "png-folder":
        files = sorted(where.rglob("*.png"))
        desc = f"the paper's downsampled ImageNet (PNG folder {where.name}/)"
        return FileImageSet(files, conform, sources=[where], description="", **meta), desc
    if form == "png-tar":
        entries = index_tar(where)
        if not entries:
            raise DataError(f"{where} holds no PNG images; download it again")
        desc = f"the paper's downsampled ImageNet (PNG archive {where.name})"
        return TarImageSet(where, entries, conform, sources=[where], description="", **meta), desc
    members = _open_npz(where, side)
    desc = (
        f"Chrabaszcz et al. 2017 npz batches ({len(where)} file(s); a different resize "
        "from the paper's PNGs, numbers not comparable)"
    )
    labels = _npz_labels(where)
    ds = NpzImageSet(
        members, sources=where, description="", labels=labels,
        class_names=None if labels is None else [str(k) for k in range(1000)],
        no_labels="its npz batches carry no 'labels' array", **meta,
    )  # fmt: skip
    if labels is not None and len(labels) != len(ds):
        raise DataError(f"{where[0].parent}: {len(labels)} labels for {len(ds)} images")
    return ds, desc


def _format_option() -> Option:
    return Option(
        "format",
        "auto",
        choice("format", ("auto", "png", "npz")),
        "auto: the paper's PNGs if found, else the npz batches",
    )


DATASETS = {
    "imagenet32": (
        "downsampled ImageNet 3x32x32, 256 levels (paper's PNGs or Chrabaszcz npz batches)",
        [_format_option()],
        _opener(32),
    ),
    "imagenet64": (
        "downsampled ImageNet 3x64x64, 256 levels (paper's PNGs or Chrabaszcz npz batches)",
        [_format_option()],
        _opener(64),
    ),
}

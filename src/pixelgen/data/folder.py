"""Any folder of PNG/JPEG images (searched recursively), converted with Pillow to
grayscale or RGB and to one size (centre crop + Lanczos resize).

Splits: `train/`, `valid/` (or `val/`, `validation/`) and `test/` subfolders when
the folder has them; otherwise every image goes to train/valid/test 90/5/5 by a
hash of its relative path, which is deterministic and stable when files are added.

Classes (for ``model.condition: class``): one subfolder per class, directly under the
folder or under each split subfolder (``train/cat/*.png``); the class names are those
subfolders' names over every split, sorted, so all splits agree on the labels. A folder
with images outside such subfolders has no labels."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .base import ImageSet
from .decode import IMAGE_SUFFIXES, Conform, open_image
from .encoded import FileImageSet
from .options import Option, channel_count, image_size

SPLIT_DIRS = {"train": ("train",), "valid": ("valid", "val", "validation"), "test": ("test",)}
_PERCENT = {"train": range(0, 90), "valid": range(90, 95), "test": range(95, 100)}


def _images_under(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _hash_percent(relative: str) -> int:
    # A content-independent hash of the path: the same file always lands in the
    # same split, and adding files never moves existing ones.
    return int.from_bytes(hashlib.sha1(relative.encode("utf-8")).digest()[:8], "big") % 100


def _split_files(root: Path, split: str) -> tuple[list[Path], str, list[Path]]:
    """(files of the split, how the split was made, every image in the folder)."""
    split_dirs = {
        s: next((root / n for n in names if (root / n).is_dir()), None)
        for s, names in SPLIT_DIRS.items()
    }
    if any(split_dirs.values()):
        folder = split_dirs[split]
        if folder is None:
            have = ", ".join(f"{d.name}/" for d in split_dirs.values() if d is not None)
            raise DataError(
                f"{root} has split subfolders ({have}) but no {SPLIT_DIRS[split][0]}/; "
                "add it, or remove the split subfolders to split by path hash"
            )
        every = [f for d in split_dirs.values() if d is not None for f in _images_under(d)]
        return _images_under(folder), f"{folder.name}/ subfolder", every
    every = _images_under(root)
    files = [f for f in every if _hash_percent(f.relative_to(root).as_posix()) in _PERCENT[split]]
    return files, "90/5/5 split by path hash", every


def _classes(
    files: list[Path], every: list[Path], base: Path
) -> tuple[list | None, list | None, str]:
    """``(labels of files, class names, why there are none)``: the first folder below the
    split folder (or below ``base``) names an image's class."""

    split_names = {n for names in SPLIT_DIRS.values() for n in names}
    by_split = any((base / n).is_dir() for n in split_names)  # as _split_files decides

    def top(f: Path) -> str | None:
        parts = f.relative_to(base).parts[1 if by_split else 0 :]
        return parts[0] if len(parts) > 1 else None

    loose = next((f for f in every if top(f) is None), None)
    if loose is not None:
        where = loose.relative_to(base).as_posix()
        return None, None, f"{where} is in no class subfolder (one subfolder per class)"
    names = sorted({top(f) for f in every})
    index = {name: k for k, name in enumerate(names)}
    return [index[top(f)] for f in files], names, ""


def _open(split: str, root: str | None, opts: dict[str, Any]) -> ImageSet:
    if root is None:
        raise ConfigError("data set 'folder' needs data.root: the folder holding the images")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data.root {base} is not a folder; point it at a folder of PNG/JPEG files")
    files, how, every = _split_files(base, split)
    if not every:
        raise DataError(f"no PNG/JPEG images under {base}; add some or fix data.root")
    if not files:
        raise DataError(
            f"no images for split {split!r} in {base} ({how}, {len(every)} images in all); "
            "add images or use train/ valid/ test/ subfolders"
        )
    labels, class_names, no_labels = _classes(files, every, base)
    channels = opts["channels"]
    size = opts["image_size"]
    size_note = ""
    if size is None:
        # The first image of the whole folder (not of the split), so every split agrees.
        w, h = open_image(every[0], str(every[0])).size
        size = (h, w)
        size_note = f" (size of {every[0].relative_to(base).as_posix()})"
    h, w = size
    mode = "grayscale" if channels == 1 else "RGB"
    desc = (
        f"folder {split}: {len(files)} images {channels}x{h}x{w}, 256 levels, from {base} "
        f"({how}), as {mode} {h}x{w}{size_note}, centre crop + Lanczos resize"
    )
    return FileImageSet(
        files,
        Conform(channels=channels, height=h, width=w, resize=True),
        name="folder",
        split=split,
        channels=channels,
        height=h,
        width=w,
        levels=256,
        description=desc,
        sources=[base],
        options={**opts, "image_size": list(size)},
        labels=labels,
        class_names=class_names,
        no_labels=no_labels,
    )


DATASETS = {
    "folder": (
        "any folder of PNG/JPEG images (needs data.root), resized to one size",
        [
            Option(
                "image_size",
                None,
                image_size("image_size"),
                "n or [height, width]; default: the size of the folder's first image",
            ),
            Option("channels", 3, channel_count("channels"), "1 (grayscale) or 3 (RGB)"),
        ],
        _open,
    ),
}

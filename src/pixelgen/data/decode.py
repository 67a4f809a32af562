"""Decoding image files with Pillow into (C, H, W) uint8 arrays: mode conversion
(grayscale "L" or "RGB"), optional centre crop + resize, and one-line DataErrors
for unreadable files."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def open_image(source: bytes | str | os.PathLike[str], what: str) -> Image.Image:
    """Open and fully decode an image (bytes or a path); `what` names it in errors."""
    try:
        with warnings.catch_warnings():
            # Palette images with transparency warn on convert; we handle alpha below.
            warnings.simplefilter("ignore", UserWarning)
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {what}: {e}; remove or replace the file") from None
    return img


def convert_mode(img: Image.Image, channels: int) -> Image.Image:
    """To "L" (channels=1) or "RGB" (channels=3), whatever the file's mode."""
    img = ImageOps.exif_transpose(img)  # JPEGs from cameras store rotation in EXIF
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit grayscale: Pillow's convert("L") would clip, so scale to 8 bits.
        arr = np.asarray(img, dtype=np.int64)
        if img.mode != "I" or arr.max(initial=0) > 255:
            arr = arr // 257
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGBa"):
        # Transparent pixels have no colour of their own: put them on white.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("L" if channels == 1 else "RGB")


def center_crop_resize(img: Image.Image, height: int, width: int) -> Image.Image:
    """Crop the centre to the target aspect ratio, then resize with a Lanczos filter."""
    w, h = img.size
    if (w, h) == (width, height):
        return img
    # Crop rather than stretch so objects keep their proportions.
    if w * height > h * width:
        new_w = max(1, round(h * width / height))
        left = (w - new_w) // 2
        img = img.crop((left, 0, left + new_w, h))
    elif w * height < h * width:
        new_h = max(1, round(w * height / width))
        top = (h - new_h) // 2
        img = img.crop((0, top, w, top + new_h))
    return img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def to_chw(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)


@dataclass(frozen=True)
class Conform:
    """Turn an encoded image into (C, H, W) uint8. A class, not a closure, so image
    sets that hold it can be pickled to DataLoader workers."""

    channels: int
    height: int
    width: int
    resize: bool  # False: a size mismatch is a DataError (fixed-size published sets)

    def __call__(self, source: bytes | str | os.PathLike[str], what: str) -> np.ndarray:
        img = convert_mode(open_image(source, what), self.channels)
        if img.size != (self.width, self.height):
            if not self.resize:
                raise DataError(
                    f"{what} is {img.size[0]}x{img.size[1]}, expected "
                    f"{self.width}x{self.height}; is it the right data set?"
                )
            img = center_crop_resize(img, self.height, self.width)
        return to_chw(img)

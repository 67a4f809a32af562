"""Images in and out: PNG grids of samples and completions, user images converted to a
model's format (colour mode, size, levels), and occlusion masks for completion.

Values are model levels ``0 .. levels - 1``; on disk they are scaled to ``0 .. 255``
(``round(v * 255 / (levels - 1))``, so 2 levels are black and white) and read back with
the inverse rounding, so a PNG written here reloads to exactly the same levels.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .errors import ImageError
from .io import save_png

#: Occlusion modes besides ``random:P`` and a mask PNG path.
OCCLUSION_MODES = ("bottom-half", "top-half", "right-half", "left-half", "center")
#: The colour hidden values are shown in (occluded views in completion grids).
HIDDEN_RGB = (255, 0, 0)
PAD_VALUE = 128


def to_uint8(images: torch.Tensor, levels: int) -> np.ndarray:
    """Levels -> ``uint8`` ``0..255``, same shape, as a NumPy array."""
    scaled = images.detach().cpu().double() * (255.0 / (levels - 1))
    return scaled.round().clamp(0, 255).to(torch.uint8).numpy()


def _hwc(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` uint8 -> ``(H, W)`` for grayscale or ``(H, W, 3)`` for RGB."""
    c = image.shape[0]
    if c == 1:
        return image[0]
    if c == 3:
        return image.transpose(1, 2, 0)
    raise ImageError(f"cannot write an image with {c} channels as PNG (1 or 3 supported)")


def _rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 -> ``(H, W, 3)``."""
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def _tile(
    tiles: list[np.ndarray], ncol: int, padding: int, scale: int, pad_value: int = PAD_VALUE
) -> np.ndarray:
    """Equal-sized ``(H, W[, 3])`` tiles in rows of ``ncol``, ``padding`` pixels around
    and between them, the whole grid then enlarged ``scale`` times (nearest neighbour)."""
    h, w = tiles[0].shape[:2]
    nrows = math.ceil(len(tiles) / ncol)
    shape = (nrows * (h + padding) + padding, ncol * (w + padding) + padding, *tiles[0].shape[2:])
    grid = np.full(shape, pad_value, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = tile
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def _save(array: np.ndarray, path: str | Path) -> Path:
    return save_png(Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB"), path)


#: Grids enlarge small images until each is at least this many pixels on its longer side.
GRID_CELL = 112


def grid_scale(size: tuple[int, int], cell: int = GRID_CELL) -> int:
    """The integer nearest-neighbour factor that makes images of ``size`` ``(H, W)`` at
    least ``cell`` pixels on their longer side in grids (28x28: 4x, 32x32: 4x, 64x64: 2x),
    so that they can be seen; 1 for images that large already."""
    return max(1, math.ceil(cell / max(size)))


def grid_shape(
    n: int, ncol: int, size: tuple[int, int], scale: int, padding: int = 2
) -> tuple[int, int]:
    """``(H, W)`` in pixels of a grid of ``n`` images of ``size`` in rows of ``ncol``."""
    ncol = max(1, ncol)
    nrows = math.ceil(n / ncol)
    h, w = size
    return (nrows * (h + padding) + padding) * scale, (ncol * (w + padding) + padding) * scale


def save_grid(
    images: torch.Tensor,
    levels: int,
    path: str | Path,
    *,
    nrow: int | None = None,
    padding: int = 2,
    scale: int = 1,
) -> Path:
    """Write ``images`` ``(N, C, H, W)`` as one PNG grid, ``nrow`` images per row (default
    ``ceil(sqrt(N))``), grey padding; grayscale stays ``L``, 3 channels are ``RGB``."""
    if images.dim() != 4 or len(images) == 0:
        raise ImageError(f"save_grid needs images (N, C, H, W), got {tuple(images.shape)}")
    ncol = nrow or math.ceil(math.sqrt(len(images)))
    tiles = [_hwc(im) for im in to_uint8(images, levels)]
    return _save(_tile(tiles, ncol, padding, scale), path)


def save_image(image: torch.Tensor, levels: int, path: str | Path, *, scale: int = 1) -> Path:
    """Write one image ``(C, H, W)`` as a PNG (no padding)."""
    return save_grid(image.unsqueeze(0), levels, path, nrow=1, padding=0, scale=scale)


def occluded_view(image: torch.Tensor, hidden: torch.Tensor, levels: int) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``image`` ``(C, H, W)`` with hidden pixels in ``HIDDEN_RGB``."""
    view = _rgb(_hwc(to_uint8(image, levels))).copy()
    view[hidden.cpu().numpy().astype(bool)] = HIDDEN_RGB
    return view


def completion_grid(
    original: torch.Tensor,
    hidden: torch.Tensor,
    completions: torch.Tensor,
    levels: int,
    path: str | Path,
    *,
    padding: int = 2,
    scale: int = 1,
    caption: bool = True,
    names: list[str] | None = None,
) -> Path:
    """One row per input: original | occluded view (hidden pixels red) | completions.

    ``original`` is ``(N, C, H, W)`` (or one ``(C, H, W)``), ``hidden`` a bool mask
    ``(H, W)`` or ``(N, H, W)``, ``completions`` ``(N, K, C, H, W)`` (or ``(K, C, H, W)``).
    Written as RGB so the hidden colour shows on grayscale images too. With ``caption``,
    a thin row on top names the columns (original, occluded, sample 1 ...), where the
    enlarged images are wide enough for the words; ``names`` replaces the completion
    columns' names (one per column, e.g. the model that drew it).
    """
    if original.dim() == 3:
        original, completions = original.unsqueeze(0), completions.unsqueeze(0)
    n, k = completions.shape[:2]
    hidden = hidden.expand(n, *original.shape[-2:])
    tiles = []
    for idx in range(n):
        tiles.append(_rgb(_hwc(to_uint8(original[idx], levels))))
        tiles.append(occluded_view(original[idx], hidden[idx], levels))
        tiles.extend(_rgb(_hwc(im)) for im in to_uint8(completions[idx], levels))
    grid = _tile(tiles, k + 2, padding, scale)
    if caption:
        names = names or [f"sample {s}" for s in range(1, k + 1)]
        grid = _with_caption(
            grid, ["original", "occluded", *names], original.shape[-1], padding, scale
        )
    return _save(grid, path)


def class_grid(
    images: torch.Tensor,
    levels: int,
    names: list[str],
    path: str | Path,
    *,
    padding: int = 2,
    scale: int = 1,
) -> Path:
    """One row per class: ``images`` ``(K, n, C, H, W)``, row ``k`` labelled ``names[k]``
    in a white column on the left (RGB, PIL's default font, sized to the rows)."""
    k, n = images.shape[:2]
    tiles = [_rgb(_hwc(im)) for im in to_uint8(images.flatten(0, 1), levels)]
    grid = _tile(tiles, n, padding, scale)
    font = _font(max(10, min(28, images.shape[-2] * scale // 4)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    boxes = [probe.textbbox((0, 0), name, font=font) for name in names]
    margin = max(b[2] for b in boxes) + 8
    img = Image.new("RGB", (grid.shape[1] + margin, grid.shape[0]), (255, 255, 255))
    img.paste(Image.fromarray(grid), (margin, 0))
    draw = ImageDraw.Draw(img)
    row = images.shape[-2] + padding
    for r, (name, box) in enumerate(zip(names, boxes, strict=True)):
        centre = (padding + r * row + images.shape[-2] / 2) * scale
        draw.text((margin - box[2] - 4, centre - box[3] / 2), name, fill=(0, 0, 0), font=font)
    return _save(np.asarray(img), path)


def _font(size: int):
    """PIL's default font at ``size`` pixels where Pillow has FreeType, else its bitmap one."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or no FreeType
        return ImageFont.load_default()


def _with_caption(grid: np.ndarray, names: list[str], width: int, padding: int, scale: int):
    """``grid`` (RGB) under a thin row with one name centred over each column, drawn in
    PIL's default font; ``grid`` unchanged where a column is too narrow for its name."""
    font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [probe.textbbox((0, 0), name, font=font)[2] for name in names]
    column = width * scale
    if max(widths) + 4 > column + padding * scale:
        return grid
    height = probe.textbbox((0, 0), "Ag", font=font)[3] + 4
    img = Image.new("RGB", (grid.shape[1], grid.shape[0] + height), (255, 255, 255))
    img.paste(Image.fromarray(grid), (0, height))
    draw = ImageDraw.Draw(img)
    for c, (name, text_width) in enumerate(zip(names, widths, strict=True)):
        centre = (padding + c * (width + padding)) * scale + column / 2
        draw.text((centre - text_width / 2, 1), name, fill=(0, 0, 0), font=font)
    return np.asarray(img)


def load_image(
    path: str | Path,
    *,
    channels: int,
    levels: int,
    size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Read an image file as model input: ``(LongTensor (C, H, W), notes)``.

    Converts the colour mode (to ``L`` for 1 channel, ``RGB`` for 3), resizes to ``size``
    ``(H, W)`` if given, and quantizes ``0..255`` to ``levels`` (2 levels: threshold 0.5).
    ``notes`` says, one line each, what was converted.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: {_not_a_file(path, 'image')}")
    try:
        with _open(path) as img:
            img.load()
            src_mode, (src_w, src_h) = img.mode, img.size
            mode = {1: "L", 3: "RGB"}.get(channels)
            if mode is None:
                raise ImageError(f"models with {channels} channels cannot read image files")
            notes = []
            if img.mode != mode:
                notes.append(f"converted {src_mode} to {mode}")
                # Palette and alpha images become RGB first so their colours survive.
                img = img.convert("RGBA" if "A" in img.mode or img.mode == "P" else img.mode)
                if img.mode == "RGBA":
                    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(white, img)
                img = img.convert(mode)
            if size is not None and (src_h, src_w) != tuple(size):
                notes.append(f"resized {src_h}x{src_w} to {size[0]}x{size[1]} (HxW)")
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.float64)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_large(path)) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageError(f"{path}: cannot read image ({reason})") from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    values = torch.from_numpy(pixels).permute(2, 0, 1) / 255.0  # (C, H, W) in [0, 1]
    if levels == 2:
        out = (values > 0.5).long()
        if not torch.equal(out.double(), values):
            notes.append("binarized at 0.5 (the model has 2 levels)")
    else:
        out = (values * (levels - 1)).round().long()
        if levels != 256:
            notes.append(f"quantized 256 levels to the model's {levels}")
    return out, notes


def occlusion_mask(mode: str, size: tuple[int, int], *, seed: int = 0) -> torch.Tensor:
    """``BoolTensor (H, W)``, True where values are hidden (to be completed).

    Modes: ``bottom-half``, ``top-half``, ``right-half``, ``left-half`` (the half with
    the middle row/column for odd sizes), ``center`` (a centred box of half the height and
    width), ``random:P`` (exactly ``round(P * H * W)`` pixels, chosen with ``seed``), or a
    path to a mask PNG of the same size (white = hidden).
    """
    h, w = size
    mask = torch.zeros(h, w, dtype=torch.bool)
    if mode == "bottom-half":
        mask[h // 2 :] = True
    elif mode == "top-half":
        mask[: h - h // 2] = True
    elif mode == "right-half":
        mask[:, w // 2 :] = True
    elif mode == "left-half":
        mask[:, : w - w // 2] = True
    elif mode == "center":
        bh, bw = max(1, h // 2), max(1, w // 2)
        top, left = (h - bh) // 2, (w - bw) // 2
        mask[top : top + bh, left : left + bw] = True
    elif mode.startswith("random:"):
        mask.view(-1)[_random_pixels(mode, h * w, seed)] = True
    elif Path(mode).is_file() or Path(mode).suffix.lower() == ".png":
        mask = _mask_file(Path(mode), size)
    else:
        valid = ", ".join((*OCCLUSION_MODES, "random:P", "a mask PNG path"))
        raise ImageError(f"unknown occlusion mode {mode!r}; valid: {valid}")
    return mask


def _random_pixels(mode: str, n: int, seed: int) -> torch.Tensor:
    try:
        p = float(mode.split(":", 1)[1])
    except ValueError:
        p = math.nan
    if not 0.0 <= p <= 1.0:
        raise ImageError(f"occlusion mode {mode!r}: P must be a fraction in [0, 1] (random:0.5)")
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[: round(p * n)]


def _mask_file(path: Path, size: tuple[int, int]) -> torch.Tensor:
    if not path.is_file():
        raise ImageError(f"{path}: {_not_a_file(path, 'mask')}")
    try:
        with _open(path) as img:
            gray = np.asarray(img.convert("L"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_large(path)) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"{path}: cannot read mask ({type(exc).__name__})") from None
    if gray.shape != tuple(size):
        raise ImageError(
            f"{path}: mask is {gray.shape[0]}x{gray.shape[1]} but the images are "
            f"{size[0]}x{size[1]} (HxW); make a mask of the image size"
        )
    return torch.from_numpy(gray > 127)


def _open(path: Path) -> Image.Image:
    """``Image.open``, refusing an image over Pillow's decompression-bomb limit (Pillow
    itself only warns up to twice the limit, then decodes it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _not_a_file(path: Path, what: str) -> str:
    return f"no such {what} file{' (it is a directory)' if path.is_dir() else ''}"


def _too_large(path: Path) -> str:
    """Pillow refuses images this large as possible decompression bombs."""
    return (
        f"{path}: refused: the image is over Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} "
        "pixels (a possible decompression bomb)"
    )


def check_writable(folder: str | Path) -> None:
    """Make sure PNGs can be written into ``folder`` before any work is done for them,
    without creating anything: its nearest existing ancestor must be a folder this process
    may write to. Otherwise a one-line ``ImageError``."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ImageError(f"{folder}: cannot write the output there ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ImageError(f"{folder}: cannot write the output there (no permission on {probe})")

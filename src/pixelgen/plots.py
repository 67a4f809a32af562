"""Training curves, heat maps and histograms as PNG, drawn with Pillow (no plotting library
needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .io import save_png


def plot_curves(
    series: dict[str, Sequence[tuple[float, float]]],
    path: str | Path,
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "bits/dim",
    size: tuple[int, int] = (720, 420),
) -> None:
    """Line chart of named ``(x, y)`` series; the first series is drawn as a line, the
    others as lines with dots (validation points are sparse)."""
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    w, h = size
    left, right, top, bottom = 70, 20, 36, 48
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    points = [p for s in series.values() for p in s]
    if not points:
        draw.text((left, top), "no data yet", fill="black", font=font)
        save_png(img, path)
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = top + (y1 - y) / (y1 - y0) * (h - top - bottom)
        return px, py

    draw.rectangle([left, top, w - right, h - bottom], outline=(160, 160, 160))
    for k in range(5):  # horizontal grid with labels
        y = y0 + (y1 - y0) * k / 4
        _, py = to_px(x0, y)
        draw.line([left, py, w - right, py], fill=(230, 230, 230))
        draw.text((4, py - 6), f"{y:.3g}", fill="black", font=font)
    for k in range(5):
        x = x0 + (x1 - x0) * k / 4
        px, _ = to_px(x, y0)
        draw.text((px - 10, h - bottom + 6), f"{x:.0f}", fill="black", font=font)
    draw.text((w // 2 - 20, h - 18), xlabel, fill="black", font=font)
    draw.text((left, 8), f"{title}   ({ylabel})", fill="black", font=font)
    for n, (name, s) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        pts = [to_px(x, y) for x, y in s]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        if n > 0 or len(pts) == 1:
            for px, py in pts:
                draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        lx = w - right - 150
        ly = top + 8 + 14 * n
        draw.line([lx, ly + 6, lx + 18, ly + 6], fill=colour, width=3)
        draw.text((lx + 24, ly), name, fill="black", font=font)
    save_png(img, path)


# Five anchors of a perceptually ordered dark-to-bright colour scale (viridis-like).
_SCALE = np.array(
    [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=float
)


def colour_scale(t: np.ndarray) -> np.ndarray:
    """Values in ``[0, 1]`` ``(...)`` -> RGB ``(..., 3)`` uint8, dark (low) to bright (high)."""
    pos = np.clip(t, 0.0, 1.0) * (len(_SCALE) - 1)
    lo = np.minimum(pos.astype(int), len(_SCALE) - 2)
    frac = (pos - lo)[..., None]
    return (_SCALE[lo] * (1 - frac) + _SCALE[lo + 1] * frac).round().astype(np.uint8)


def plot_heatmap(
    values: np.ndarray, path: str | Path, *, title: str = "", unit: str = "nats", cell: int = 12
) -> None:
    """A ``(H, W)`` map drawn cell by cell on the colour scale, with a labelled colour bar."""
    h, w = values.shape
    lo, hi = float(values.min()), float(values.max())
    t = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    cells = np.kron(colour_scale(t), np.ones((cell, cell, 1), dtype=np.uint8))
    font = ImageFont.load_default()
    top, bar = 24, 16
    img = Image.new("RGB", (w * cell + 110, max(h * cell, 120) + top + 8), "white")
    img.paste(Image.fromarray(cells), (4, top))
    ramp = colour_scale(np.linspace(1, 0, h * cell))[:, None, :].repeat(bar, 1)
    x_bar = w * cell + 16
    img.paste(Image.fromarray(ramp), (x_bar, top))
    draw = ImageDraw.Draw(img)
    draw.text((4, 6), title, fill="black", font=font)
    draw.text((x_bar + bar + 4, top - 4), f"{hi:.3g}", fill="black", font=font)
    draw.text((x_bar + bar + 4, top + h * cell - 8), f"{lo:.3g}", fill="black", font=font)
    draw.text((x_bar + bar + 4, top + h * cell // 2 - 6), unit, fill="black", font=font)
    save_png(img, path)


def plot_histogram(
    values: np.ndarray,
    path: str | Path,
    *,
    bins: int = 40,
    title: str = "",
    xlabel: str = "NLL (nats)",
    size: tuple[int, int] = (720, 360),
) -> None:
    """Histogram of ``values`` with the mean marked."""
    counts, edges = np.histogram(values, bins=bins)
    w, h = size
    left, right, top, bottom = 60, 20, 36, 48
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    x0, x1, c1 = float(edges[0]), float(edges[-1]), max(int(counts.max()), 1)
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return left + (x - x0) / span * (w - left - right)

    def py(c: float) -> float:
        return h - bottom - c / c1 * (h - top - bottom)

    draw.rectangle([left, top, w - right, h - bottom], outline=(160, 160, 160))
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        draw.rectangle([px(a), py(c), max(px(b) - 1, px(a)), h - bottom], fill=(31, 119, 180))
    mean = float(values.mean())
    draw.line([px(mean), top, px(mean), h - bottom], fill=(214, 39, 40), width=2)
    label, at = f"mean {mean:.2f}", (px(mean) + 4, top + 4)
    draw.rectangle(draw.textbbox(at, label, font=font), fill="white")
    draw.text(at, label, fill=(214, 39, 40), font=font)
    for k in range(5):
        x = x0 + span * k / 4
        draw.text((px(x) - 12, h - bottom + 6), f"{x:.3g}", fill="black", font=font)
    draw.text((4, top - 4), f"{c1}", fill="black", font=font)
    draw.text((4, h - bottom - 8), "0", fill="black", font=font)
    draw.text((w // 2 - 30, h - 18), xlabel, fill="black", font=font)
    draw.text((left, 8), title, fill="black", font=font)
    save_png(img, path)

"""Training curves as PNG, drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


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
        img.save(path)
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
    img.save(path)

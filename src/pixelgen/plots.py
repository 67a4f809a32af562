"""Training curves, heat maps and histograms as PNG, drawn with Pillow (no plotting library
needed)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .io import save_png

#: Line colours, in order (the "tab10" palette).
COLOURS = [
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def nice_step(span: float, target: int = 5) -> float:
    """The round tick spacing (1, 2 or 5 x 10^k) that cuts ``span`` into about ``target``
    intervals."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * 0.999)


def nice_range(lo: float, hi: float, target: int = 5) -> tuple[float, float, float]:
    """``(lo', hi', step)``: the range widened to whole multiples of a round step."""
    if hi <= lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, target)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step


def tick_label(value: float, step: float) -> str:
    """``value`` written as plainly as its ``step`` allows: 0.155, 86, 20k, 1.5M."""
    if abs(value) < step * 1e-6:
        return "0"
    for unit, suffix in ((1e6, "M"), (1e3, "k")):
        if step >= unit / 10 and abs(value) >= unit:
            return f"{round(value / unit, 6):g}{suffix}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def plot_curves(
    series: dict[str, Sequence[tuple[float, float]]],
    path: str | Path,
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "bits/dim",
    size: tuple[int, int] = (720, 420),
    dotted: Sequence[str] | None = None,
    ylim: tuple[float, float] | None = None,
    colour_of: Mapping[str, int] | None = None,
    dashed: Sequence[str] = (),
) -> None:
    """Line chart of named ``(x, y)`` series on round ticks (1, 2, 5 x 10^k) on both axes,
    the x axis from 0 for values that are not negative. The series named in ``dotted``
    (default: all but the first, since validation points are sparse) also get a dot at
    each point. ``ylim`` limits the y range; what lies outside it is cut off. ``colour_of``
    gives a series the palette index of another (a reference line in its model's colour;
    default: one colour per series in order), and the series named in ``dashed`` are drawn
    dashed (reference values rather than measurements)."""
    dotted = set(list(series)[1:] if dotted is None else dotted)
    colours = [COLOURS[(colour_of or {}).get(name, n) % len(COLOURS)] for n, name in
               enumerate(series)]  # fmt: skip
    w, h = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = _font()
    points = [p for s in series.values() for p in s]
    if not points:
        draw.text((70, 36), "no data yet", fill="black", font=font)
        save_png(img, path)
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, xstep = nice_range(min(0.0, min(xs)), max(xs), target=6)
    lo, hi = ylim if ylim is not None else (min(ys), max(ys))
    pad = (hi - lo) * 0.03
    y0, y1, ystep = nice_range(lo - pad, hi + pad)
    yticks = _ticks(y0, y1, ystep)
    ylabels = [tick_label(v, ystep) for v in yticks]
    left = 16 + max(_text_width(draw, t, font) for t in ylabels)
    right, top, bottom = 24, 36, 48

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = top + (y1 - y) / (y1 - y0) * (h - top - bottom)
        return px, py

    for y in yticks:
        _, py = to_px(x0, y)
        draw.line([left, py, w - right, py], fill=(230, 230, 230))
    xticks = _ticks(x0, x1, xstep)
    for x in xticks:
        px, _ = to_px(x, y0)
        draw.line([px, top, px, h - bottom], fill=(240, 240, 240))
    for colour, (name, s) in zip(colours, series.items(), strict=True):
        pts = [to_px(x, y) for x, y in s]
        _series(draw, pts, colour, dots=name in dotted, dashes=name in dashed)
    _clip(draw, size, (left, top, w - right, h - bottom))
    for y, label in zip(yticks, ylabels, strict=True):
        _tick(draw, font, to_px(x0, y), label, horizontal=False)
    for x in xticks:
        _tick(draw, font, to_px(x, y0), tick_label(x, xstep), horizontal=True)
    draw.text(
        (w // 2 - _text_width(draw, xlabel, font) / 2, h - 20), xlabel, fill="black", font=font
    )
    draw.text((left, 8), f"{title}   ({ylabel})" if title else ylabel, fill="black", font=font)
    _legend(draw, font, dict(zip(series, colours, strict=True)), dotted, set(dashed),
            right=w - right - 8, top=top + 8)  # fmt: skip
    save_png(img, path)


def _tick(draw, font, at: tuple[float, float], label: str, *, horizontal: bool) -> None:
    """A tick mark and its label outside the axes, at ``at`` (a point on the axis: below
    it for the x axis, left of it for the y axis)."""
    px, py = at
    width = _text_width(draw, label, font)
    if horizontal:
        draw.line([px, py, px, py + 4], fill=(120, 120, 120))
        draw.text((px - width / 2, py + 6), label, fill="black", font=font)
    else:
        draw.line([px - 4, py, px, py], fill=(120, 120, 120))
        draw.text((px - 8 - width, py - 8), label, fill="black", font=font)


def _clip(draw, size: tuple[int, int], box: tuple[float, float, float, float]) -> None:
    """Cut off whatever was drawn outside the axes ``box`` (values beyond ylim) and frame
    it."""
    (w, h), (left, top, right, bottom) = size, box
    for r in ([0, 0, w, top - 1], [0, bottom + 1, w, h], [0, 0, left - 1, h], [right + 1, 0, w, h]):
        draw.rectangle(r, fill="white")
    draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))


def _series(draw, pts: list[tuple[float, float]], colour, *, dots: bool, dashes: bool):
    """One series in pixels: a line (dashed or solid), and a dot at each point where asked
    (or where there is a single point, which no line can show)."""
    if len(pts) > 1 and dashes:
        _dashed_line(draw, pts, fill=colour, width=2)
    elif len(pts) > 1:
        draw.line(pts, fill=colour, width=2)
    if dots or len(pts) == 1:
        for px, py in pts:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)


def _dashed_line(draw, pts: list[tuple[float, float]], *, fill, width: int, dash: float = 8):
    """A polyline drawn as dashes of ``dash`` pixels with gaps of the same length."""
    for (xa, ya), (xb, yb) in itertools.pairwise(pts):
        length = max(((xb - xa) ** 2 + (yb - ya) ** 2) ** 0.5, 1e-9)
        for k in range(int(length // (2 * dash)) + 1):
            t0, t1 = 2 * k * dash / length, min((2 * k + 1) * dash / length, 1.0)
            if t0 < 1.0:
                start = (xa + (xb - xa) * t0, ya + (yb - ya) * t0)
                draw.line([start, (xa + (xb - xa) * t1, ya + (yb - ya) * t1)], fill=fill,
                          width=width)  # fmt: skip


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    n = round((hi - lo) / step)
    return [lo + k * step for k in range(n + 1)]


def _font(size: int = 12):
    """PIL's default font, at a size whose spaces show (at its usual 10 they are 2 pixels)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> float:
    box = draw.textbbox((0, 0), text, font=font)
    return box[2] - box[0]


def _legend(draw, font, colours: dict, dotted: set[str], dashed: set[str], *, right: float,
            top: float) -> None:  # fmt: skip
    """The names with their colours, in a white box in the top right corner."""
    names = list(colours)
    width = 34 + max(_text_width(draw, name, font) for name in names)
    lx = right - width
    draw.rectangle(
        [lx - 6, top - 4, right, top + 16 * len(names)], fill="white", outline=(200, 200, 200)
    )
    for n, name in enumerate(names):
        colour, ly = colours[name], top + 16 * n
        if name in dashed:
            _dashed_line(draw, [(lx, ly + 8), (lx + 18, ly + 8)], fill=colour, width=3, dash=5)
        else:
            draw.line([lx, ly + 8, lx + 18, ly + 8], fill=colour, width=3)
        if name in dotted:
            draw.ellipse([lx + 6, ly + 5, lx + 12, ly + 11], fill=colour)
        draw.text((lx + 24, ly), name, fill="black", font=font)


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
    font = _font()
    top, bar = 24, 16
    img = Image.new("RGB", (w * cell + 110, max(h * cell, 120) + top + 8), "white")
    img.paste(Image.fromarray(cells), (4, top))
    ramp = colour_scale(np.linspace(1, 0, h * cell))[:, None, :].repeat(bar, 1)
    x_bar = w * cell + 16
    img.paste(Image.fromarray(ramp), (x_bar, top))
    draw = ImageDraw.Draw(img)
    draw.text((4, 6), title, fill="black", font=font)
    low, high = bar_labels(lo, hi)
    draw.text((x_bar + bar + 4, top - 4), high, fill="black", font=font)
    draw.text((x_bar + bar + 4, top + h * cell - 8), low, fill="black", font=font)
    draw.text((x_bar + bar + 4, top + h * cell // 2 - 6), unit, fill="black", font=font)
    save_png(img, path)


def bar_labels(lo: float, hi: float) -> tuple[str, str]:
    """A colour bar's end labels, both with the decimals that give the top three significant
    digits: an empty border's 8e-10 nats reads as 0.000 beside 0.352, not as 8.46e-10."""
    top = max(abs(lo), abs(hi))
    places = max(0, 2 - math.floor(math.log10(top))) if top > 0 else 3
    return f"{lo:.{places}f}", f"{hi:.{places}f}"


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
    font = _font()
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

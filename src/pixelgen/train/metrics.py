"""The run's ``metrics.jsonl``: one JSON line per logged step (``split: train``) and per
validation (``split: valid``), and the ``curve.png`` drawn from it."""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write, storage_error
from ..plots import plot_curves

FILE = "metrics.jsonl"


def append(run_dir: Path, record: dict) -> None:
    path = Path(run_dir) / FILE
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:  # a torn last line is left out by every reader
        raise storage_error(path, exc, kept="its earlier lines are kept") from None


def trim(run_dir: Path, step: int) -> None:
    """On resume, drop records from steps after the checkpoint (they will be redone), and a
    torn last line (a run killed mid-write)."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return
    keep = [json.dumps(r) for r in read_metrics(run_dir) if r["step"] <= step]
    atomic_write(path, lambda f: f.write("".join(ln + "\n" for ln in keep).encode()))


def read_metrics(run_dir: Path) -> list[dict]:
    """The records, in order; a torn last line (a run killed mid-write) is left out."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return []
    lines = [ln for ln in path.read_text().splitlines() if ln]
    rows = [json.loads(ln) for ln in lines[:-1]]
    if lines:
        try:
            rows.append(json.loads(lines[-1]))
        except json.JSONDecodeError:
            pass
    return rows


def plot(run_dir: Path, title: str, *, levels: int | None = None) -> None:
    """``curve.png``: training and validation NLL against the step, in nats for 2-level
    data (``levels``) and bits/dim otherwise. The y range holds every validation point
    and the training points from the first validation on, or from the first tenth of the
    run if that is earlier (a short run validated only at its end); the large losses of
    the first steps, above it, are cut off."""
    rows = read_metrics(run_dir)
    key, unit = ("nll_nats", "nats") if levels == 2 else ("bits_per_dim", "bits/dim")
    series = {
        split: [(r["step"], r[key]) for r in rows if r["split"] == split]
        for split in ("train", "valid")
    }
    plot_curves(series, Path(run_dir) / "curve.png", title=title, ylabel=unit, ylim=_ylim(series))


def _ylim(series: dict[str, list[tuple[float, float]]]) -> tuple[float, float] | None:
    valid, train = series["valid"], series["train"]
    start = max((x for s in series.values() for x, _ in s), default=0) / 10
    if valid:
        start = min(start, valid[0][0])
    shown = [y for _, y in valid] + [y for x, y in train if x >= start]
    shown = shown or [y for _, y in train]
    ys = [y for s in series.values() for _, y in s]
    return (min(ys), max(shown)) if shown else None

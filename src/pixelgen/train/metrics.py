"""The run's ``metrics.jsonl``: one JSON line per logged step (``split: train``) and per
validation (``split: valid``), and the ``curve.png`` drawn from it."""

from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write
from ..plots import plot_curves

FILE = "metrics.jsonl"


def append(run_dir: Path, record: dict) -> None:
    with open(Path(run_dir) / FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


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


def plot(run_dir: Path, title: str) -> None:
    """``curve.png``: training and validation bits/dim against the step."""
    rows = read_metrics(run_dir)
    series = {
        split: [(r["step"], r["bits_per_dim"]) for r in rows if r["split"] == split]
        for split in ("train", "valid")
    }
    plot_curves(series, Path(run_dir) / "curve.png", title=title)

"""The training runs under a folder, read cheaply for ``pixelgen runs``, and their validation
curves drawn on one figure for ``pixelgen plot``.

A run is a folder holding ``checkpoints/last.pt``, ``checkpoints/best.pt`` or
``metrics.jsonl``. Reading one never loads or verifies its tensors (see
:func:`pixelgen.checkpoint.peek_checkpoint`), and a damaged file makes that run
``damaged`` with the reason, never the whole listing fail.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checkpoint import Checkpoint, peek_checkpoint
from .errors import PixelgenError
from .images import check_writable
from .plots import plot_curves
from .text import first_line
from .train.lock import NAME as LOCK_NAME
from .train.metrics import FILE as METRICS_FILE
from .train.metrics import read_metrics

STATES = ("finished", "running", "stopped", "damaged")
#: ``<recipe>-<date>-<time>``, the name ``pixelgen train`` gives a run directory.
_DEFAULT_NAME = re.compile(r"^(?P<recipe>.+)-\d{8}-\d{6}$")


class RunError(PixelgenError):
    """A run directory that cannot be listed or plotted as asked."""


@dataclass
class RunInfo:
    """What ``pixelgen runs`` shows of one run (None: not known)."""

    path: Path
    recipe: str | None = None
    model: str | None = None
    data: str | None = None
    step: int | None = None
    total: int | None = None
    images_seen: int | None = None
    best_valid_nats: float | None = None
    best_valid_bits_per_dim: float | None = None
    best_valid_step: int | None = None
    test: dict[str, Any] | None = None  # the last test record of RUN/eval.json
    state: str = "stopped"
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def is_run(folder: Path) -> bool:
    ckpts = folder / "checkpoints"
    return any(p.is_file() for p in (ckpts / "last.pt", ckpts / "best.pt", folder / METRICS_FILE))


def find_runs(root: str | Path) -> list[Path]:
    """The runs directly under ``root`` (or ``root`` itself, when it is one), by name."""
    root = Path(root)
    if not root.exists():
        raise RunError(f"{root}: no such folder")
    if not root.is_dir():
        raise RunError(f"{root}: not a folder of runs")
    if is_run(root):
        return [root]
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise RunError(f"{root}: cannot be listed ({first_line(exc)})") from None
    return [p for p in children if is_run(p)]


def list_runs(root: str | Path) -> list[RunInfo]:
    return [run_info(p) for p in find_runs(root)]


def run_info(run_dir: str | Path) -> RunInfo:
    """One run's summary; every file that cannot be read adds to ``problems`` and makes
    the state ``damaged`` (unless a live process is training it: ``running``)."""
    run_dir = Path(run_dir)
    info = RunInfo(path=run_dir)
    recipe_file, source = _read_recipe_file(run_dir, info.problems)
    last = _peek(run_dir / "checkpoints" / "last.pt", info.problems)
    best = _peek(run_dir / "checkpoints" / "best.pt", info.problems)
    ckpt = last or best
    recipe = ckpt.recipe if ckpt is not None and isinstance(ckpt.recipe, dict) else recipe_file
    recipe = recipe if isinstance(recipe, dict) else {}
    info.recipe = _recipe_name(run_dir, source)
    model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    train = recipe.get("train") if isinstance(recipe.get("train"), dict) else {}
    info.model = ckpt.model_name if ckpt is not None else model.get("name")
    info.data = data.get("name")
    if ckpt is not None:
        info.step = ckpt.step
        info.total = _total_steps(train, ckpt.data)
        if isinstance(train.get("batch_size"), int):
            info.images_seen = ckpt.step * train["batch_size"]
    elif isinstance(train.get("max_steps"), int):
        info.total = train["max_steps"]
    _best_valid(info, run_dir, ckpt)
    info.test = _last_test(run_dir / "eval.json", info.problems)
    if holds_lock(run_dir):
        info.state = "running"
    elif info.problems:
        info.state = "damaged"
    elif last is not None and info.total is not None and last.step >= info.total:
        info.state = "finished"
    return info


def _peek(path: Path, problems: list[str]) -> Checkpoint | None:
    if not path.exists():
        return None
    try:
        return peek_checkpoint(path)
    except PixelgenError as exc:
        problems.append(str(exc))
        return None


def _read_recipe_file(run_dir: Path, problems: list[str]) -> tuple[dict | None, str | None]:
    """``RUN/recipe.yaml`` as a dict, and the recipe it was resolved from (its header)."""
    path = run_dir / "recipe.yaml"
    if not path.exists():
        return None, None
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"{path}: unreadable ({first_line(exc)})")
        return None, None
    if not isinstance(data, dict):
        problems.append(f"{path}: not a recipe")
        return None, None
    m = re.match(r"# pixelgen recipe, resolved from (.+)", text)
    return data, m[1].strip() if m else None


def _recipe_name(run_dir: Path, source: str | None) -> str | None:
    if source:
        return Path(source).stem
    m = _DEFAULT_NAME.match(run_dir.name)
    return m["recipe"] if m else None


def _total_steps(train: dict, data: Any) -> int | None:
    """``train.max_steps``, else ``train.epochs`` times the steps of one epoch."""
    if isinstance(train.get("max_steps"), int):
        return train["max_steps"]
    epochs, batch = train.get("epochs"), train.get("batch_size")
    images = data.get("num_images") if isinstance(data, dict) else None
    if all(isinstance(v, int) and v > 0 for v in (epochs, batch, images)):
        return epochs * (images // batch)
    return None


def _dims(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    sizes = [data.get(k) for k in ("channels", "height", "width")]
    return math.prod(sizes) if all(isinstance(v, int) and v > 0 for v in sizes) else None


def _best_valid(info: RunInfo, run_dir: Path, ckpt: Checkpoint | None) -> None:
    """The lowest validation NLL in ``metrics.jsonl``, else the checkpoint's record of it."""
    try:
        valid = valid_records(run_dir)
    except RunError as exc:
        info.problems.append(str(exc))
        valid = []
    if valid:
        best = min(valid, key=lambda r: r["nll_nats"])
        info.best_valid_nats = float(best["nll_nats"])
        bits = best.get("bits_per_dim")
        info.best_valid_bits_per_dim = float(bits) if isinstance(bits, (int, float)) else None
        info.best_valid_step = best.get("step")
        return
    recorded = ckpt.state.get("best_valid_nll") if ckpt is not None else None
    if isinstance(recorded, (int, float)):
        info.best_valid_nats = float(recorded)
        dims = _dims(ckpt.data)
        if dims:
            info.best_valid_bits_per_dim = float(recorded) / (dims * math.log(2))


def valid_records(run_dir: Path) -> list[dict]:
    """The run's validation records (``split: valid``), in order."""
    path = run_dir / METRICS_FILE
    try:
        rows = read_metrics(run_dir)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"{path}: unreadable ({first_line(exc)})") from None
    valid = [r for r in rows if isinstance(r, dict) and r.get("split") == "valid"]
    for r in valid:
        if not isinstance(r.get("nll_nats"), (int, float)) or not isinstance(r.get("step"), int):
            raise RunError(f"{path}: a validation record without step or nll_nats: {r}")
    return valid


def _last_test(path: Path, problems: list[str]) -> dict | None:
    """The newest record of ``RUN/eval.json`` (written by ``pixelgen eval``) on the test
    split: its NLL, standard error, bits/dim, image count, step and time."""
    if not path.exists():
        return None
    try:
        records = json.loads(path.read_text())
        if not isinstance(records, list):
            raise ValueError("not a JSON list")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{path}: unreadable ({first_line(exc)})")
        return None
    tests = [r for r in records if isinstance(r, dict) and r.get("split") == "test"]
    keys = ("nll_nats", "nll_nats_stderr", "bits_per_dim", "num_images", "step", "time")
    for r in reversed(tests):
        if isinstance(r.get("nll_nats"), (int, float)):
            return {k: r.get(k) for k in keys} | {"checkpoint": r.get("checkpoint")}
    return None


def holds_lock(run_dir: Path) -> bool:
    """Whether a live process holds ``RUN/.lock`` (a ``pixelgen train`` is writing the run),
    found without taking the lock: on Linux, ``/proc/locks`` lists the lock on that file;
    elsewhere, the process whose id the lock file records is alive."""
    path = Path(run_dir) / LOCK_NAME
    try:
        st = path.stat()
        pid_text = path.read_text(errors="replace").strip()
    except OSError:
        return False
    pid = int(pid_text) if pid_text.isdigit() else None
    try:
        with open("/proc/locks") as f:
            table = f.read().splitlines()
    except OSError:
        return pid is not None and _alive(pid)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table:
        # "1: FLOCK  ADVISORY  WRITE 19050 fe:00:5351653 0 EOF"
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK":  # "-> FLOCK ...": a waiter, not a holder
            continue
        holder, where = parts[4], parts[5]
        # The device number can differ from stat's on layered file systems: then the
        # inode and the recorded process id must both match.
        if where == device or (where.rsplit(":", 1)[-1] == str(st.st_ino) and holder == str(pid)):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------- plot


@dataclass
class Curve:
    """One run's validation curve: ``(step, images seen, nats, bits/dim)`` points."""

    name: str
    points: list[tuple[int, int | None, float, float | None]]
    levels: int | None


def validation_curve(run_dir: str | Path) -> Curve:
    """A run's validation records, with the images seen at each (step x batch size) and
    the number of levels of its data; a one-line ``RunError`` where there are none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    if not is_run(run_dir):
        raise RunError(f"{run_dir}: not a run directory (no checkpoints/ or {METRICS_FILE})")
    valid = valid_records(run_dir)
    if not valid:
        raise RunError(
            f"{run_dir}: no validation records in {METRICS_FILE} yet (the first comes after "
            "train.eval_every steps)"
        )
    problems: list[str] = []
    recipe, _ = _read_recipe_file(run_dir, problems)
    ckpt = _peek(run_dir / "checkpoints" / "last.pt", problems) or _peek(
        run_dir / "checkpoints" / "best.pt", problems
    )
    if ckpt is not None and isinstance(ckpt.recipe, dict):
        recipe = ckpt.recipe
    train = (recipe or {}).get("train") if isinstance(recipe, dict) else None
    batch = train.get("batch_size") if isinstance(train, dict) else None
    batch = batch if isinstance(batch, int) else None
    levels = ckpt.data.get("levels") if ckpt is not None and isinstance(ckpt.data, dict) else None
    points = []
    for r in valid:
        bits = r.get("bits_per_dim")
        points.append(
            (
                r["step"],
                r["step"] * batch if batch else None,
                float(r["nll_nats"]),
                float(bits) if isinstance(bits, (int, float)) else None,
            )
        )
    return Curve(run_dir.name, points, levels if isinstance(levels, int) else None)


def plot_runs(
    run_dirs: list[str | Path],
    out: str | Path,
    *,
    x: str = "images",
    bits_per_dim: bool = False,
) -> dict[str, Any]:
    """Draw the validation curves of ``run_dirs`` on one figure at ``out`` (legend: the run
    names). ``x`` is ``images`` (images seen) or ``step``; y is nats when every run has
    2-level data (and not ``bits_per_dim``), else bits/dim. Returns what was drawn."""
    if x not in ("images", "step"):
        raise RunError(f"--x: must be images or step, got {x!r}")
    if not run_dirs:
        raise RunError("no runs given: pass one or more run directories")
    out = Path(out)
    if out.is_dir():
        raise RunError(f"{out}: is a directory; --out needs a PNG file name")
    check_writable(out.parent)  # before any reading or drawing
    curves = [validation_curve(p) for p in run_dirs]
    names = _legend_names([Path(p) for p in run_dirs])
    nats = not bits_per_dim and all(c.levels == 2 for c in curves)
    if not nats:
        for c, path in zip(curves, run_dirs, strict=True):
            if any(p[3] is None for p in c.points):
                raise RunError(f"{path}: validation records without bits_per_dim")
    if x == "images":
        for c, path in zip(curves, run_dirs, strict=True):
            if any(p[1] is None for p in c.points):
                raise RunError(
                    f"{path}: its batch size is unknown (no recipe), so are the images seen; "
                    "use --x step"
                )
    series = {
        name: [(p[1] if x == "images" else p[0], p[2] if nats else p[3]) for p in c.points]
        for name, c in zip(names, curves, strict=True)
    }
    unit = "nats" if nats else "bits/dim"
    xlabel = "images seen" if x == "images" else "step"
    plot_curves(
        series,
        out,
        title="validation NLL",
        xlabel=xlabel,
        ylabel=unit,
        dotted=list(series),
    )
    return {"out": out, "runs": names, "unit": unit, "x": xlabel}


def _legend_names(paths: list[Path]) -> list[str]:
    """Run names, with their parent folder where two runs share a name."""
    names = [p.resolve().name or str(p) for p in paths]
    return [
        f"{p.resolve().parent.name}/{n}" if names.count(n) > 1 else n
        for p, n in zip(paths, names, strict=True)
    ]

"""Train a recipe for a fixed wall-clock budget, then score it on the test set: the shared
part of ``scripts/ablation.py`` and ``scripts/multiscale_budget.py``.

The budget is wall-clock time from the first step (start-up and data loading excluded):
the run writes ``recipe.yaml`` just before its first step, after the imports and the data
loading. SIGINT ends it at the budget, which saves ``last.pt`` at the end of the current
step, and ``pixelgen eval`` scores that checkpoint. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

# No validation inside the budget, and no schedule end: the run stops at the budget.
BUDGET_SETS = [
    "train.max_steps=100000000",
    "train.eval_every=100000000",
    "train.checkpoint_every=500",
    "train.log_every=100",
]


def pixelgen(*args: str) -> list[str]:
    return [sys.executable, "-m", "pixelgen", *args]


def train(run: Path, recipe: str, sets: list[str], seconds: float, env: dict) -> float:
    """Train ``recipe`` with ``--set`` items ``sets`` for ``seconds`` from its first step;
    returns the seconds it ran."""
    args = ["train", recipe, "--no-progress", "--out", str(run)]
    args += [a for s in [*sets, *BUDGET_SETS] for a in ("--set", s)]
    proc = subprocess.Popen(pixelgen(*args), env=env)
    while not (run / "recipe.yaml").exists():
        if proc.poll() is not None:
            raise SystemExit(f"budget: training {recipe} failed ({proc.returncode})")
        time.sleep(0.05)
    start = time.perf_counter()
    try:
        proc.wait(timeout=seconds)
        raise SystemExit(f"budget: training {recipe} ended by itself ({proc.returncode})")
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait()
    return time.perf_counter() - start


def score(run: Path, env: dict, test_images: int | None = None) -> dict:
    """``pixelgen eval`` of the run's ``last.pt`` on the test set (all of it by default)."""
    out = run / "test.json"
    args = ["eval", str(run / "checkpoints" / "last.pt"), "--split", "test", "--no-progress"]
    args += ["--json", str(out)] + (["--max-images", str(test_images)] if test_images else [])
    subprocess.run(pixelgen(*args), env=env, check=True)
    return json.loads(out.read_text())

"""``scripts/average_probe.py``: it continues a copy of a run with averages beside it, one
JSON row per scoring, and ``--cool-down`` brings the rate to zero over its steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pixelgen.config import load_recipe
from pixelgen.train import train

ROOT = Path(__file__).resolve().parents[1]
SETS = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.eval_max_images=8",
        "train.optimizer=adam", "train.max_steps=20", "train.lr=0.002",
        "train.schedule=exponential", "train.lr_decay=0.5", "train.warmup_steps=0"]  # fmt: skip


def probe(run: Path, *args: str) -> list[dict]:
    sets = [a for s in SETS for a in ("--set", s)]
    cmd = [sys.executable, str(ROOT / "scripts/average_probe.py"), str(run), "quick_pixelcnn"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([*cmd, *sets, *args], capture_output=True, text=True, env=env, check=True)
    return [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]


def test_the_probe_scores_the_averages_and_cools_the_rate_down(tmp_path):
    recipe = load_recipe("quick_pixelcnn", [*SETS, "train.max_steps=4"])
    train(recipe, run_dir=tmp_path / "run", show_progress=False, log=lambda *a: None)
    rows = probe(tmp_path / "run", "--steps", "6", "--every", "3", "--decays", "0.5", "0.9")
    assert [(r["steps"], r["step"]) for r in rows] == [(3, 7), (6, 10)]
    assert all({"trained", "ema 0.5", "ema 0.9"} <= r.keys() for r in rows)
    assert rows[0]["ema 0.5"] != rows[0]["trained"]
    cooled = probe(tmp_path / "run", "--steps", "4", "--every", "2", "--cool-down")
    # from the checkpoint's rate (0.002 halved at each of its 4 steps), half way down
    # after 2 of the probe's 4 steps, zero at the end
    assert [r["lr"] for r in cooled] == [pytest.approx(0.002 / 2**4 / 2), 0.0]

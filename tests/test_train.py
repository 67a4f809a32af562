"""Training: runs end to end, resumes exactly (also after SIGKILL), stops on NaN,
writes atomically, and refuses checkpoints that carry pickled objects."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pixelgen import checkpoint as ck
from pixelgen.config import load_recipe
from pixelgen.errors import CheckpointError, TrainingError
from pixelgen.io import atomic_write
from pixelgen.train import train

TINY = [
    "model.hidden=4",
    "model.layers=1",
    "train.batch_size=4",
    "train.optimizer=rmsprop",
    "train.lr=0.01",
    "train.eval_max_images=8",
    "train.log_every=2",
    "eval.batch_size=8",
    "sample.n=2",
]
ROOT = Path(__file__).resolve().parents[1]


def tiny(steps: int, *extra: str, name: str = "quick_rowlstm"):
    return load_recipe(
        name,
        [
            *TINY,
            f"train.max_steps={steps}",
            "train.eval_every=3",
            "train.checkpoint_every=3",
            *extra,
        ],
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return ck.load_checkpoint(path).weights


def test_run_directory_contents(tmp_path):
    result = train(tiny(6), run_dir=tmp_path / "run", show_progress=False, log=lambda *_: None)
    run = result.run_dir
    assert result.step == 6 and result.best_valid_nll is not None
    for name in [
        "recipe.yaml",
        "metrics.jsonl",
        "curve.png",
        "checkpoints/last.pt",
        "checkpoints/best.pt",
    ]:
        assert (run / name).is_file(), name
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "valid"] == [3, 6]
    assert {r["step"] for r in rows if r["split"] == "train"} == {2, 4, 6}
    ckpt = ck.load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt.model_name == "row_lstm" and ckpt.step == 6
    assert ckpt.recipe["model"]["hidden"] == 4 and ckpt.data["levels"] == 2
    assert {"optimizer", "scheduler", "rng", "data_position"} <= set(ckpt.state)
    model = ck.load_model(run / "checkpoints" / "last.pt")  # the checkpoint alone suffices
    assert model(torch.zeros(1, 1, 28, 28, dtype=torch.long)).shape == (1, 2, 1, 28, 28)


@pytest.mark.parametrize("name", ["quick_rowlstm", "quick_pixelcnn", "quick_diagonal_bilstm"])
def test_resume_matches_uninterrupted_run(tmp_path, name):
    quiet = {"show_progress": False, "log": lambda *_: None}
    full = train(tiny(6, name=name), run_dir=tmp_path / "full", **quiet)
    train(tiny(3, name=name), run_dir=tmp_path / "split", **quiet)
    resumed = train(tiny(6, name=name), run_dir=tmp_path / "split", resume=True, **quiet)
    assert resumed.step == 6
    a = weights(full.run_dir / "checkpoints" / "last.pt")
    b = weights(resumed.run_dir / "checkpoints" / "last.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # each record once, in order (the split run also logs step 3, the end of its first part)
    path = tmp_path / "split" / "metrics.jsonl"
    keys = [(r["step"], r["split"]) for r in map(json.loads, path.open())]
    assert len(keys) == len(set(keys)) and [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert {k[0] for k in keys if k[1] == "valid"} == {3, 6}


@pytest.mark.slow
def test_sigkill_leaves_last_checkpoint_intact_and_resume_is_exact(tmp_path):
    args = [
        *TINY,
        "train.max_steps=400",
        "train.eval_every=1000",
        "train.checkpoint_every=1",
        "train.log_every=1000",
    ]
    cmd = [
        sys.executable,
        "-m",
        "pixelgen",
        "train",
        "quick_pixelcnn",
        "--no-progress",
        "--out",
        str(tmp_path / "killed"),
    ] + [a for s in args for a in ("--set", s)]
    # One thread like the in-process runs below: float sums must be ordered the same way.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (last.exists() and ck.load_checkpoint(last).step >= 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # at an arbitrary instant, possibly mid-write
    proc.wait()
    killed_at = ck.load_checkpoint(last).step  # still loads
    assert 20 <= killed_at < 400
    quiet = {"show_progress": False, "log": lambda *_: None}
    recipe = load_recipe("quick_pixelcnn", args)
    resumed = train(recipe, run_dir=tmp_path / "killed", resume=True, **quiet)
    full = train(recipe, run_dir=tmp_path / "full", **quiet)
    a = weights(full.run_dir / "checkpoints/last.pt")
    b = weights(resumed.run_dir / "checkpoints/last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    quiet = {"show_progress": False, "log": lambda *_: None}
    train(tiny(3), run_dir=tmp_path / "run", **quiet)
    good = weights(tmp_path / "run/checkpoints/last.pt")
    real = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(TrainingError, match="non-finite loss at step 4"):
        train(tiny(6), run_dir=tmp_path / "run", resume=True, **quiet)
    after = ck.load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert after.step == 3 and all(torch.equal(good[k], after.weights[k]) for k in good)


def test_interrupt_saves_a_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = F.cross_entropy

    def interrupt_on_fifth(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(F, "cross_entropy", interrupt_on_fifth)
    result = train(tiny(100), run_dir=tmp_path / "run", show_progress=False, log=lambda *_: None)
    assert result.interrupted and result.step == 4
    assert ck.load_checkpoint(tmp_path / "run/checkpoints/last.pt").step == 4


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "version": 1, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        ck.load_checkpoint(path)
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    train(tiny(3), run_dir=tmp_path / "run", show_progress=False, log=lambda *_: None)
    data = (tmp_path / "run/checkpoints/last.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        ck.load_checkpoint(bad)


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temporary left behind

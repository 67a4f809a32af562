"""Exact resume beyond the easy case: Adam with warm-up and a cosine rate, RMSProp with an
exponential rate, an ``epochs:`` recipe stopped inside its second epoch with dynamic
binarization, gradient accumulation, and a moving average of the weights. A run stopped
(or killed) at step 5 and resumed ends with the uninterrupted run's weights, optimizer
state and metrics, step for step. The slow tests kill a real training process with
SIGKILL at 20 random instants, and again in the middle of checkpoint writes."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from pixelgen import checkpoint as ck
from pixelgen.config import load_recipe
from pixelgen.train import loop, train

QUIET = {"show_progress": False, "log": lambda *a: None}
TINY = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.eval_max_images=4",
        "train.eval_every=4", "train.checkpoint_every=3", "train.log_every=1",
        "eval.batch_size=4", "sample.n=1"]  # fmt: skip
# Ten training images: with batch 4 an epoch is 2 steps, so step 5 is inside epoch 3.
SMALL = ["data.valid_size=59990"]
CASES = {
    "adam-warmup-cosine": ["train.optimizer=adam", "train.warmup_steps=3",
                           "train.schedule=cosine", "train.max_steps=9"],
    "rmsprop-exponential": ["train.optimizer=rmsprop", "train.schedule=exponential",
                            "train.lr_decay=0.8", "train.max_steps=9"],
    "epochs-dynamic-binarization": [*SMALL, "data.binarize=dynamic", "train.epochs=4",
                                    "train.optimizer=adam", "train.schedule=cosine"],
    "accumulate": ["train.accumulate=2", "train.optimizer=adam", "train.max_steps=9"],
    # decay 0.3: the warm-up ends at the 4th update, so the resumed half runs past it
    "weight-average": ["train.ema=0.3", "train.optimizer=adam", "train.max_steps=9"],
}  # fmt: skip


class Killed(BaseException):
    """Ends a run the way SIGKILL does: no handler saves anything."""


def stop_at(monkeypatch, step: int, exc: type[BaseException]) -> None:
    real = loop.train_step

    def train_step(s, x):
        if s.step == step:
            raise exc
        return real(s, x)

    monkeypatch.setattr(loop, "train_step", train_step)


def history(run: Path) -> list[tuple]:
    """The metrics without the timing, which no two runs share."""
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return [tuple(sorted((k, v) for k, v in r.items() if k != "images_per_s")) for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    ca, cb = (ck.load_checkpoint(r / "checkpoints" / "last.pt") for r in (a, b))
    assert ca.step == cb.step
    for k in ca.weights:
        assert torch.equal(ca.weights[k], cb.weights[k]), k
    assert ca.state.get("average") == cb.state.get("average")
    if "average" in ca.state:  # the weights above are the average; the trained ones:
        assert ca.state["train_weights"].keys() == cb.state["train_weights"].keys()
        for k, v in ca.state["train_weights"].items():
            assert torch.equal(v, cb.state["train_weights"][k]), k
    sa, sb = ca.state["optimizer"]["state"], cb.state["optimizer"]["state"]
    for i in sa:
        for k, v in sa[i].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(sb[i][k])), (i, k)
    assert ca.state["scheduler"] == cb.state["scheduler"]
    assert history(a) == history(b)


@pytest.mark.parametrize("how", ["interrupted", "killed"])
@pytest.mark.parametrize("case", list(CASES))
def test_resume_is_exact(tmp_path, monkeypatch, case, how):
    recipe = load_recipe("quick_rowlstm", [*TINY, *CASES[case]])
    train(recipe, run_dir=tmp_path / "full", **QUIET)
    with monkeypatch.context() as m:
        if how == "interrupted":  # Ctrl-C: last.pt of step 5 is saved on the way out
            stop_at(m, 5, KeyboardInterrupt)
            assert train(recipe, run_dir=tmp_path / "split", **QUIET).interrupted
        else:  # last.pt holds step 3, and metrics.jsonl has lines for steps 4 and 5 to drop
            stop_at(m, 5, Killed)
            with pytest.raises(Killed):
                train(recipe, run_dir=tmp_path / "split", **QUIET)
            logged = [r["step"] for r in map(json.loads, open(tmp_path / "split/metrics.jsonl"))]
            assert max(logged) == 5
            assert ck.load_checkpoint(tmp_path / "split/checkpoints/last.pt").step == 3
    train(recipe, run_dir=tmp_path / "split", resume=True, **QUIET)
    assert_same_run(tmp_path / "full", tmp_path / "split")


def test_the_epochs_case_crosses_epoch_boundaries_after_the_stop(tmp_path):
    recipe = load_recipe("quick_rowlstm", [*TINY, *CASES["epochs-dynamic-binarization"]])
    result = train(recipe, run_dir=tmp_path / "run", **QUIET)
    assert result.step == 8  # 4 epochs of 2 steps: the stop at 5 leaves two boundaries ahead


# ---------------------------------------------------------------------------- real kills

KILLED = [*TINY, *SMALL, "data.binarize=dynamic", "train.optimizer=adam",
          "train.warmup_steps=20", "train.schedule=cosine", "train.checkpoint_every=1",
          "train.eval_every=100000", "train.epochs=150"]  # fmt: skip


def _child(run: Path, sets: list[str]) -> None:
    torch.set_num_threads(1)  # like the uninterrupted run here: sums are ordered the same
    last = run / "checkpoints" / "last.pt"
    resume = last.exists() or ck.previous_path(last).exists()
    train(load_recipe("quick_pixelcnn", sets), run_dir=run, resume=resume, **QUIET)


def start(run: Path, sets: list[str]) -> multiprocessing.process.BaseProcess:
    """A training process forked from this one (it starts in a second, where a fresh
    interpreter spends many importing torch), to be killed with SIGKILL."""
    import torch._dynamo  # noqa: F401  (torch's optimizers import it on first use: once, here)

    proc = multiprocessing.get_context("fork").Process(target=_child, args=(run, sets))
    proc.start()
    return proc


def saved_step(run: Path) -> int:
    try:
        return ck.load_checkpoint(run / "checkpoints" / "last.pt").step
    except Exception:  # not there yet, or being replaced this instant
        return -1


def logged_steps(run: Path) -> list[int]:
    """The steps of the training records in metrics.jsonl, in file order."""
    path = run / "metrics.jsonl"
    out = []
    for ln in path.read_text().splitlines() if path.exists() else []:
        try:
            r = json.loads(ln)
        except json.JSONDecodeError:  # the torn last line of a killed write
            continue
        if r["split"] == "train":
            out.append(r["step"])
    return out


@pytest.mark.slow
def test_twenty_kills_at_random_instants(tmp_path):
    run, rng = tmp_path / "killed", random.Random(0)
    total, kills, lost = 150 * 2, 0, []
    while kills < 20:
        # a random instant: 1 to 5 steps after the resume, then a fraction of a step
        target = max(logged_steps(run), default=0) + rng.randint(1, 5)
        proc = start(run, KILLED)
        deadline = time.time() + 60
        while max(logged_steps(run), default=0) < target and time.time() < deadline:
            if not proc.is_alive():
                break
            time.sleep(0.005)
        assert proc.is_alive(), f"the run stopped by itself ({proc.exitcode})"
        time.sleep(rng.uniform(0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        kills += 1
        done, kept = max(logged_steps(run)), ck.load_checkpoint(run / "checkpoints/last.pt").step
        assert kept < total, "the run ended before it was killed"
        # checkpoint_every is 1: a kill loses at most the step being saved, never more
        lost.append(done - kept)
        assert done - kept <= 1, (done, kept)
    proc = start(run, KILLED)
    proc.join(timeout=300)
    assert proc.exitcode == 0
    recipe = load_recipe("quick_pixelcnn", KILLED)
    train(recipe, run_dir=tmp_path / "full", **QUIET)
    assert_same_run(tmp_path / "full", run)
    assert logged_steps(run) == list(range(1, total + 1))  # each step once, in order
    print(f"{kills} kills survived; steps lost beyond the checkpoint interval: "
          f"{sum(max(0, x - 1) for x in lost)}")  # fmt: skip


@pytest.mark.slow
def test_kills_in_the_middle_of_checkpoint_writes(tmp_path):
    """A bigger model, so that writing last.pt takes a while: each kill lands while its
    temporary file exists, i.e. during the write, and the run still resumes exactly."""
    sets = [*KILLED, "model.hidden=96", "model.layers=4", "train.epochs=15"]
    run, mid_write, tries = tmp_path / "killed", 0, 0
    while mid_write < 2 and tries < 10:  # a kill can miss a write by a hair: try again
        tries += 1
        proc = start(run, sets)
        deadline, tmp = time.time() + 60, []
        while saved_step(run) < 0 and proc.is_alive() and time.time() < deadline:
            time.sleep(0.01)  # a first last.pt, whole, to be replaced
        while not tmp and proc.is_alive() and time.time() < deadline:
            tmp = list((run / "checkpoints").glob(".last.pt.*.tmp"))
        assert proc.is_alive(), f"the run stopped by itself ({proc.exitcode})"
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        mid_write += any(t.exists() for t in tmp)
        ck.load_checkpoint(run / "checkpoints" / "last.pt")  # whole at every instant
    assert mid_write >= 2, "the kills did not land during a write"
    proc = start(run, sets)
    proc.join(timeout=300)
    assert proc.exitcode == 0
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the stale ones were removed
    train(load_recipe("quick_pixelcnn", sets), run_dir=tmp_path / "full", **QUIET)
    assert_same_run(tmp_path / "full", run)

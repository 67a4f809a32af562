"""Each part of the training loop on its own: setup, one step, the event stream, the
metrics file, save and validate."""

from __future__ import annotations

import importlib
import json

import pytest
import torch
import torch.nn.functional as F

from pixelgen import checkpoint as ck
from pixelgen.config import load_recipe
from pixelgen.errors import TrainingError
from pixelgen.train import metrics, save, setup, train, train_step, train_steps, validate
from pixelgen.train.step import next_batch

TINY = [
    "model.hidden=4",
    "model.layers=1",
    "train.batch_size=4",
    "train.eval_max_images=8",
    "eval.batch_size=8",
    "sample.n=2",
]


def session(tmp_path, *extra, resume=False, log=lambda *a: None):
    recipe = load_recipe("quick_pixelcnn", [*TINY, *extra])
    return setup(recipe, run_dir=tmp_path / "run", resume=resume, log=log)


def test_setup_builds_the_run_and_writes_the_resolved_recipe(tmp_path):
    lines = []
    s = session(tmp_path, "train.max_steps=7", log=lines.append)
    assert (s.step, s.total, s.best, s.saved) == (0, 7, None, None)
    assert (s.run_dir / "recipe.yaml").is_file() and s.dims == 784
    assert s.net is s.model  # no compile, no DDP
    assert any("parameters" in line for line in lines)


def test_train_step_does_one_update_and_advances_the_step(tmp_path):
    s = session(tmp_path, "train.max_steps=5")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    x = next_batch(s)
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.long
    nll = train_step(s, x)
    assert s.step == 1 and 0 < nll < 784 * 2
    after = s.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a_non_finite_step_changes_nothing(tmp_path, monkeypatch):
    s = session(tmp_path, "train.max_steps=5")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    real = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(TrainingError, match="non-finite loss at step 1"):
        train_step(s, next_batch(s))
    assert s.step == 0
    assert all(torch.equal(before[k], v) for k, v in s.model.state_dict().items())


def test_train_steps_yield_what_each_step_calls_for(tmp_path):
    s = session(tmp_path, "train.max_steps=7", "train.log_every=2", "train.eval_every=3",
                "train.checkpoint_every=5")  # fmt: skip
    events = list(train_steps(s))
    assert [e.step for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.step for e in events if e.record] == [2, 4, 6, 7]  # and always the last
    assert [e.step for e in events if e.validate] == [3, 6, 7]
    assert [e.step for e in events if e.checkpoint] == [5, 7]
    rec = events[1].record
    assert rec["nll_nats"] == pytest.approx((events[0].nll + events[1].nll) / 2)
    assert rec["split"] == "train" and rec["images_per_s"] > 0
    assert not (s.run_dir / "metrics.jsonl").exists()  # the caller writes, not the loop


def test_validate_keeps_the_best_and_save_records_last(tmp_path):
    s = session(tmp_path, "train.max_steps=3")
    train_step(s, next_batch(s))
    assert validate(s) is True and s.best is not None
    assert ck.load_checkpoint(s.run_dir / "checkpoints" / "best.pt").step == 1
    s.best = -1.0  # nothing beats it
    assert validate(s) is False
    save(s, s.last_path)
    assert s.saved == 1 and ck.load_checkpoint(s.last_path).step == 1
    rows = metrics.read_metrics(s.run_dir)
    assert [r["split"] for r in rows] == ["valid", "valid"]
    assert (s.run_dir / "curve.png").is_file() and (s.run_dir / "samples").is_dir()


def test_metrics_trim_drops_the_steps_after_a_checkpoint(tmp_path):
    for step in (1, 2, 3, 4):
        metrics.append(tmp_path, {"step": step, "split": "train"})
    metrics.trim(tmp_path, 2)
    assert [r["step"] for r in metrics.read_metrics(tmp_path)] == [1, 2]
    lines = (tmp_path / metrics.FILE).read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [1, 2]


def test_resume_says_where_it_continues_from(tmp_path):
    train(load_recipe("quick_pixelcnn", [*TINY, "train.max_steps=2"]), run_dir=tmp_path / "run",
          show_progress=False, log=lambda *a: None)  # fmt: skip
    lines = []
    s = session(tmp_path, "train.max_steps=4", resume=True, log=lines.append)
    assert s.step == 2 and s.saved == 2
    assert any("resuming from" in ln and "step 2 of 4" in ln and "8 images" in ln for ln in lines)


def test_adam_runs_fused_and_a_resumed_run_gets_it_back(tmp_path, monkeypatch):
    setup_module = importlib.import_module("pixelgen.train.setup")  # the function shadows it
    # The first part runs torch's default loop, whose choice (fused=None) the checkpoint keeps.
    monkeypatch.setattr(setup_module, "implementation", lambda recipe, params: {})
    adam = [*TINY, "train.optimizer=adam", "train.max_steps=2"]
    train(load_recipe("quick_pixelcnn", adam), run_dir=tmp_path / "run",
          show_progress=False, log=lambda *a: None)  # fmt: skip
    monkeypatch.undo()
    # torch places each step counter by the flags of the groups it loads (on CUDA the fused
    # kernel needs it on the GPU), so the flags must be this process's before loading.
    loaded = []
    real_load = torch.optim.Adam.load_state_dict
    monkeypatch.setattr(torch.optim.Adam, "load_state_dict", lambda opt, state: (
        loaded.extend(state["param_groups"]), real_load(opt, state))[1])  # fmt: skip
    recipe = load_recipe("quick_pixelcnn", [*adam[:-1], "train.max_steps=4"])
    s = setup(recipe, run_dir=tmp_path / "run", resume=True, log=lambda *a: None)
    assert loaded and all(g["fused"] is True and g["foreach"] is False for g in loaded)
    assert s.step == 2 and all(g["fused"] and not g["foreach"] for g in s.opt.param_groups)
    assert s.opt.state  # the saved moments came back with it
    rms = session(tmp_path / "rms", "train.optimizer=rmsprop", "train.max_steps=2")
    assert all(g["foreach"] for g in rms.opt.param_groups)  # RMSProp has no fused kernel
    fp16 = load_recipe("quick_pixelcnn", [*TINY, "train.optimizer=adam", "train.precision=fp16"])
    params = list(s.model.parameters())
    assert setup_module.implementation(fp16, params) == {"fused": False, "foreach": True}
    # torch has the fused kernel for CPU parameters from 2.4 on (pyproject allows 2.2)
    fp32 = load_recipe("quick_pixelcnn", [*TINY, "train.optimizer=adam"])
    assert setup_module._torch_version() >= (2, 2)  # "2.13.0+cpu" -> (2, 13)
    monkeypatch.setattr(setup_module, "_torch_version", lambda: (2, 3))
    assert setup_module.implementation(fp32, params) == {"fused": False, "foreach": True}
    monkeypatch.setattr(setup_module, "_torch_version", lambda: (2, 4))
    assert setup_module.implementation(fp32, params) == {"fused": True, "foreach": False}


def test_one_writer_per_run_directory(tmp_path):
    first = session(tmp_path, "train.max_steps=2")
    assert first.lock is not None and (first.run_dir / ".lock").read_text().strip().isdigit()
    with pytest.raises(TrainingError, match=r"is being trained by process \d+"):
        session(tmp_path, "train.max_steps=2")
    first.lock.release()
    second = session(tmp_path, "train.max_steps=2")  # free again
    second.lock.release()


def test_train_releases_the_lock_however_it_ends(tmp_path, monkeypatch):
    real = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    recipe = load_recipe("quick_pixelcnn", [*TINY, "train.max_steps=2"])
    with pytest.raises(TrainingError, match="non-finite"):
        train(recipe, run_dir=tmp_path / "run", show_progress=False, log=lambda *a: None)
    session(tmp_path, "train.max_steps=2").lock.release()  # not refused: the lock is free


def test_a_torn_last_metrics_line_is_left_out_and_trimmed(tmp_path):
    metrics.append(tmp_path, {"step": 1, "split": "train"})
    metrics.append(tmp_path, {"step": 2, "split": "train"})
    with open(tmp_path / metrics.FILE, "a") as f:
        f.write('{"step": 3, "spl')  # killed mid-write
    assert [r["step"] for r in metrics.read_metrics(tmp_path)] == [1, 2]
    metrics.trim(tmp_path, 5)
    assert (tmp_path / metrics.FILE).read_text().count("\n") == 2
    assert [r["step"] for r in metrics.read_metrics(tmp_path)] == [1, 2]


def test_out_of_memory_saves_last_and_says_what_to_change(tmp_path, monkeypatch):
    recipe = load_recipe("quick_pixelcnn", [*TINY, "train.max_steps=6", "train.eval_every=3",
                                            "train.checkpoint_every=6"])  # fmt: skip
    real, calls = F.cross_entropy, {"n": 0}

    def oom_on_fifth(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*a, **k)

    monkeypatch.setattr(F, "cross_entropy", oom_on_fifth)
    with pytest.raises(TrainingError) as err:
        train(recipe, run_dir=tmp_path / "run", show_progress=False, log=lambda *a: None)
    message = str(err.value)
    assert "out of memory at step 5" in message and "train.accumulate" in message
    assert ck.load_checkpoint(tmp_path / "run/checkpoints/last.pt").step == 4

"""``train.tensorboard: true``: event files in RUN/tb/ with the training and validation
NLL and bits/dim, the learning rate, images/s and the sample grids, read back with
TensorBoard's own reader; a resume purges what came after the checkpoint; without the
package the option is a one-line error before any work."""

from __future__ import annotations

import sys

import pytest

from pixelgen.cli import main
from pixelgen.config import load_recipe
from pixelgen.errors import ConfigError
from pixelgen.train import train

TINY = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.eval_max_images=4",
        "train.eval_every=3", "train.checkpoint_every=3", "train.log_every=1",
        "eval.batch_size=4", "sample.n=1", "train.tensorboard=true"]  # fmt: skip
QUIET = {"show_progress": False, "log": lambda *a: None}


def events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_events_hold_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    train(load_recipe("quick_rowlstm", [*TINY, "train.max_steps=3"]), run_dir=run, **QUIET)
    train(load_recipe("quick_rowlstm", [*TINY, "train.max_steps=6"]), run_dir=run, resume=True,
          **QUIET)  # fmt: skip
    acc = events(run)
    tags = acc.Tags()
    assert {"train/nll_nats", "train/bits_per_dim", "train/lr", "train/images_per_s",
            "valid/nll_nats", "valid/bits_per_dim"} <= set(tags["scalars"])  # fmt: skip
    steps = [e.step for e in acc.Scalars("train/nll_nats")]
    assert sorted(steps) == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in acc.Scalars("valid/nll_nats")] == [3, 6]
    images = acc.Images("samples")
    assert [i.step for i in images] == [3, 6] and images[0].width > 0


def test_resume_purges_what_came_after_the_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from pixelgen.train import loop

    run = tmp_path / "run"
    real = loop.train_step

    def killed_at_5(s, x):
        if s.step == 5:
            raise SystemExit  # no save: last.pt holds step 3, tb has steps 4 and 5
        return real(s, x)

    recipe = load_recipe("quick_rowlstm", [*TINY, "train.max_steps=6"])
    with monkeypatch.context() as m:
        m.setattr(loop, "train_step", killed_at_5)
        with pytest.raises(SystemExit):
            train(recipe, run_dir=run, **QUIET)
    train(recipe, run_dir=run, resume=True, **QUIET)
    steps = [e.step for e in events(run).Scalars("train/nll_nats")]
    assert steps == [1, 2, 3, 4, 5, 6]  # each once: the killed run's 4 and 5 were purged


def test_without_the_package_it_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails
    with pytest.raises(ConfigError, match=r"pixelgen\[tensorboard\]"):
        train(load_recipe("quick_rowlstm", [*TINY, "train.max_steps=1"]),
              run_dir=tmp_path / "run", **QUIET)  # fmt: skip
    assert not (tmp_path / "run").exists()
    sets = [a for s in [*TINY, "train.max_steps=1"] for a in ("--set", s)]
    code = main(["train", "quick_rowlstm", *sets, "--out", str(tmp_path / "r2"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "pip install" in err

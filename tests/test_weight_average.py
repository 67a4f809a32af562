"""The weights' moving average (``train.ema``): its recursion, what validation scores and
checkpoints keep, and how a resumed run carries it, turns it on or drops it. Exact resume
with an average is in ``test_resume``."""

from __future__ import annotations

import json

import pytest
import torch

from pixelgen import checkpoint as ck
from pixelgen.config import load_recipe
from pixelgen.errors import ConfigError
from pixelgen.evaluate import evaluate
from pixelgen.train import save, setup, train, train_step, validate
from pixelgen.train.step import next_batch

TINY = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.eval_max_images=8",
        "eval.batch_size=8", "sample.n=2", "train.optimizer=adam", "train.lr=0.01"]  # fmt: skip
QUIET = {"show_progress": False, "log": lambda *a: None}


def session(tmp_path, *extra, resume=False):
    recipe = load_recipe("quick_pixelcnn", [*TINY, *extra])
    return setup(recipe, run_dir=tmp_path / "run", resume=resume, log=lambda *a: None)


def params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_the_average_follows_its_recursion_with_the_warm_up(tmp_path):
    s = session(tmp_path, "train.ema=0.9", "train.max_steps=20")
    expected = [p.double() for p in params(s.model)]  # the average starts at the weights
    for n in range(12):
        train_step(s, next_batch(s))
        d = min(0.9, (1 + n) / (10 + n))  # by hand: 0.1, 0.18, ... then 0.9 from n = 8
        now = params(s.model)
        expected = [d * a + (1 - d) * w.double() for a, w in zip(expected, now, strict=True)]
    got = params(s.average.module)
    assert s.average.count == 12
    for a, e in zip(got, expected, strict=True):
        torch.testing.assert_close(a.double(), e, atol=1e-6, rtol=0)
    # and it is not the trained weights themselves
    assert any(not torch.equal(a, w) for a, w in zip(got, params(s.model), strict=True))


def test_validation_scores_the_average_and_the_checkpoints_keep_it(tmp_path):
    s = session(tmp_path, "train.ema=0.8", "train.max_steps=20")
    for _ in range(6):
        train_step(s, next_batch(s))
    validate(s)
    save(s, s.last_path)
    record = [json.loads(ln) for ln in open(s.run_dir / "metrics.jsonl")][-1]
    scored = evaluate(s.average.module, s.valid_set, batch_size=8, max_images=8).nll_nats
    trained = evaluate(s.model, s.valid_set, batch_size=8, max_images=8).nll_nats
    assert record["weights"] == "average" and record["nll_nats"] == pytest.approx(scored)
    assert scored != pytest.approx(trained)
    for name in ("best.pt", "last.pt"):
        c = ck.load_checkpoint(s.run_dir / "checkpoints" / name)
        loaded = ck.load_model(c.path)  # what eval, sample, complete and export build
        for a, b in zip(params(loaded), params(s.average.module), strict=True):
            assert torch.equal(a, b), name
        for k, v in s.model.state_dict().items():
            assert torch.equal(c.state["train_weights"][k], v), (name, k)
        assert c.state["average"] == {"decay": 0.8, "count": 6}


def test_a_resumed_run_continues_the_average_and_may_change_its_decay(tmp_path):
    train(load_recipe("quick_pixelcnn", [*TINY, "train.ema=0.9", "train.max_steps=5"]),
          run_dir=tmp_path / "run", **QUIET)  # fmt: skip
    saved = ck.load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    s = session(tmp_path, "train.ema=0.99", "train.max_steps=9", resume=True)
    assert (s.average.count, s.average.decay) == (5, 0.99)
    for k, v in s.average.module.state_dict().items():
        assert torch.equal(v, saved.weights[k]), k
    for k, v in s.model.state_dict().items():  # training goes on from the trained weights
        assert torch.equal(v, saved.state["train_weights"][k]), k


def test_an_average_turned_on_at_resume_starts_from_the_resumed_weights(tmp_path):
    train(load_recipe("quick_pixelcnn", [*TINY, "train.max_steps=5"]),
          run_dir=tmp_path / "run", **QUIET)  # fmt: skip
    s = session(tmp_path, "train.ema=0.9", "train.max_steps=9", resume=True)
    assert s.average.count == 0
    for a, w in zip(params(s.average.module), params(s.model), strict=True):
        assert torch.equal(a, w)


def test_an_average_dropped_at_resume_trains_on_from_the_trained_weights(tmp_path):
    train(load_recipe("quick_pixelcnn", [*TINY, "train.ema=0.9", "train.max_steps=5"]),
          run_dir=tmp_path / "run", **QUIET)  # fmt: skip
    saved = ck.load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    s = session(tmp_path, "train.max_steps=9", resume=True)
    assert s.average is None
    for k, v in s.model.state_dict().items():
        assert torch.equal(v, saved.state["train_weights"][k]), k


@pytest.mark.parametrize("decay", ["1", "0", "1.5", "-0.1"])
def test_a_decay_outside_0_to_1_is_a_one_line_error(decay):
    with pytest.raises(ConfigError, match="train.ema") as exc:
        load_recipe("quick_pixelcnn", [f"train.ema={decay}"])
    assert "\n" not in str(exc.value)


def test_a_step_the_fp16_scaler_skips_leaves_the_average_as_it_was(tmp_path):
    s = session(tmp_path, "train.ema=0.9", "train.max_steps=20", "train.precision=fp16",
                "train.device=cpu")  # fmt: skip
    s.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # fp16 gradients overflow
    before = params(s.model)
    train_step(s, next_batch(s))
    assert s.scaler.get_scale() < 2.0**40  # skipped: the weights did not move ...
    assert all(torch.equal(a, b) for a, b in zip(params(s.model), before, strict=True))
    assert s.average.count == 0  # ... and the average did not count it
    s.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)
    train_step(s, next_batch(s))
    assert s.average.count == 1


def test_the_run_says_it_keeps_an_average_and_since_when(tmp_path):
    def said(*sets, resume=False) -> str:
        lines = []
        recipe = load_recipe("quick_pixelcnn", [*TINY, *sets])
        s = setup(recipe, run_dir=tmp_path / "run", resume=resume, log=lines.append)
        s.lock.release()
        return next((ln for ln in lines if ln.startswith("weights:")), "")

    assert said("train.ema=0.9", "train.max_steps=3") == (
        "weights: moving average (decay 0.9); validation and checkpoints use it"
    )
    train(load_recipe("quick_pixelcnn", [*TINY, "train.max_steps=3"]), run_dir=tmp_path / "run",
          **QUIET)  # fmt: skip
    assert "(decay 0.9, from this step)" in said("train.ema=0.9", "train.max_steps=6", resume=True)
    assert said("train.max_steps=6", resume=True) == ""

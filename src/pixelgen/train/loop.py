"""The loop in parts: :func:`train_steps` runs the steps and yields, after each, what is
due (a metrics record, a validation, a checkpoint); :func:`validate` and :func:`save` are
plain functions the caller runs when they are."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import checkpoint as ck
from ..config import recipe_to_dict
from ..evaluate import evaluate
from ..images import grid_scale, save_grid
from . import metrics
from .setup import Session
from .step import next_batch, train_step


@dataclass(frozen=True)
class Event:
    """What one finished step calls for."""

    step: int
    nll: float  # the step's mean NLL (nats)
    record: dict | None  # the metrics record, when the step closes a logging window
    validate: bool
    checkpoint: bool


def train_steps(s: Session) -> Iterator[Event]:
    """Train from ``s.step`` to ``s.total``, yielding an :class:`Event` after each step."""
    t = s.recipe.train
    window, tic = [], time.perf_counter()
    while s.step < s.total:
        nll = train_step(s, next_batch(s))
        step, last = s.step, s.step == s.total
        window.append(nll)
        record = None
        if step % t.log_every == 0 or last:
            loss = sum(window) / len(window)
            record = {
                "step": step,
                "split": "train",
                "nll_nats": loss,
                "bits_per_dim": s.bits(loss),
                "lr": s.sched.get_last_lr()[0],
                "images_per_s": len(window) * t.batch_size / (time.perf_counter() - tic),
            }
            window, tic = [], time.perf_counter()
        yield Event(
            step=step,
            nll=nll,
            record=record,
            validate=step % t.eval_every == 0 or last,
            checkpoint=step % t.checkpoint_every == 0 or last,
        )


def save(s: Session, path: Path, *, final: bool = False) -> None:
    """Write the session as a checkpoint at ``path``, atomically. A stop signal waits for
    the end of the write; the last save of a run (``final``) drops it."""
    with s.signals.protect(deliver=not final):
        # last.pt keeps its predecessor as last.prev.pt: one damaged file never loses a run
        ck.save_checkpoint(path, _checkpoint(s), keep_previous=path == s.last_path)
        if path == s.last_path:
            s.saved = s.step


def validate(s: Session) -> bool:
    """Score the validation split (all ranks); rank 0 records it, keeps ``best.pt`` on a
    new best, draws a sample grid and redraws the curve. Returns whether it was a best."""
    t = s.recipe.train
    res = evaluate(
        s.scored_model,
        s.valid_set,
        batch_size=s.recipe.eval.batch_size,
        max_images=t.eval_max_images,
        device=s.device,
        dist=s.dist,
    )
    if not s.dist.is_main:
        return False
    record = {
        "step": s.step,
        "split": "valid",
        "nll_nats": res.nll_nats,
        "bits_per_dim": res.bits_per_dim,
        "num_images": res.num_images,
    }
    if s.average is not None:
        record["weights"] = "average"
    if res.parts is not None:  # a model of parts (multiscale): each part's NLL in nats
        record["parts"] = {k: v["nll_nats"] for k, v in res.parts.items()}
    metrics.append(s.run_dir, record)
    best = s.best is None or res.nll_nats < s.best
    if best:
        s.best = res.nll_nats
        save(s, s.run_dir / "checkpoints" / "best.pt")
    sample_grid(s)
    metrics.plot(s.run_dir, Path(s.recipe.source).stem, levels=s.valid_set.levels)
    return best


def sample_grid(s: Session) -> None:
    """A small grid of samples at validation time (its own RNG: training is unaffected)."""
    model, data, cfg = s.scored_model, s.train_set, s.recipe.sample
    if not hasattr(model, "sample"):
        return
    gen = torch.Generator().manual_seed(cfg.seed)
    was_training = model.training
    model.eval()
    # A class-conditional model draws the classes in turn: 0, 1, ..., 0, 1, ...
    cond = None if s.condition is None else torch.arange(cfg.n) % s.condition.classes
    with torch.no_grad():
        x = model.sample(
            cfg.n,
            size=(data.height, data.width),
            generator=gen,
            temperature=cfg.temperature,
            method=cfg.method,
            **({} if cond is None else {"cond": cond}),
        )
    model.train(was_training)
    out = s.run_dir / "samples" / f"step_{s.step:06d}.png"
    out.parent.mkdir(exist_ok=True)
    save_grid(x.cpu(), data.levels, out, nrow=cfg.nrow, scale=grid_scale((data.height, data.width)))


def _checkpoint(s: Session) -> ck.Checkpoint:
    epoch, index = divmod(s.step, s.per_epoch)
    state = {
        "optimizer": s.opt.state_dict(),
        "scheduler": s.sched.state_dict(),
        "scaler": s.scaler.state_dict(),
        "rng": ck.rng_state(),
        "best_valid_nll": s.best,
        "data_position": {"epoch": epoch, "index": index},
        "world_size": s.dist.world_size,
    }
    if s.average is not None:
        # The weights every command loads are the average; --resume needs the trained ones.
        state["train_weights"] = s.model.state_dict()
        state["average"] = s.average.state()
    return ck.Checkpoint(
        model_name=s.recipe.model.name,
        hparams=dict(s.model.hparams),
        weights=s.scored_model.state_dict(),
        recipe=recipe_to_dict(s.recipe),
        data=s.train_set.info(),
        step=s.step,
        state=state,
    )

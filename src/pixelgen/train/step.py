"""One optimizer step: the step's batch, the forward and backward passes over its
micro-batches, the non-finite check and the parameter update."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ..errors import TrainingError
from .setup import Session


def batch_indices(step: int, num_images: int, batch: int, seed: int) -> tuple[torch.Tensor, int]:
    """The global batch of ``step``: a slice of the seeded permutation of its epoch."""
    per_epoch = num_images // batch
    epoch, k = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(num_images, generator=gen)
    return perm[k * batch : (k + 1) * batch], epoch


def next_batch(s: Session) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """This process's share ``(b, C, H, W)`` of the global batch of step ``s.step``; for a
    conditional model with its labels ``(b,)``: ``(images, labels)``."""
    t = s.recipe.train
    idx, epoch = batch_indices(s.step, len(s.train_set), t.batch_size, t.seed)
    s.train_set.set_epoch(epoch)
    share = t.batch_size // s.dist.world_size
    local = idx[s.dist.rank * share : (s.dist.rank + 1) * share]
    x, labels = s.train_set.batch(local)
    x = x.to(s.device, torch.long)
    return x if labels is None else (x, labels.to(s.device))


def train_step(s: Session, batch: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> float:
    """One optimizer step on ``batch`` (images, or images and their condition); returns
    the global batch's mean NLL (nats) and advances ``s.step``. A non-finite loss raises
    before any parameter changes."""
    t, dist = s.recipe.train, s.dist
    x, cond = batch if isinstance(batch, tuple) else (batch, None)
    s.net.train()
    s.opt.zero_grad(set_to_none=True)
    total_nll = torch.zeros((), device=s.device, dtype=torch.float64)
    micro = x.chunk(t.accumulate)
    conds = cond.chunk(t.accumulate) if cond is not None else [None] * len(micro)
    for m, (xb, cb) in enumerate(zip(micro, conds, strict=True)):
        sync = m == len(micro) - 1 or not dist.active
        with nullcontext() if sync else s.net.no_sync():
            with s.autocast():
                logits = s.net(xb) if cb is None else s.net(xb, cb)  # (b, L, C, H, W)
                nll = F.cross_entropy(logits.float(), xb, reduction="sum")
            # DDP all-reduces the gradients during the last micro-batch's backward
            with dist.guard("the gradient all-reduce") if sync else nullcontext():
                s.scaler.scale(nll / len(x)).backward()
        total_nll += nll.detach().double()
    mean_nll = dist.all_reduce_sum(total_nll) / t.batch_size
    if not torch.isfinite(mean_nll):
        raise TrainingError(
            f"non-finite loss at step {s.step + 1}; stopped, and {s.last_path} keeps the last "
            "good state (lower train.lr or set train.grad_clip)"
        )
    # A stop signal waits: the parameters and the step counter change together.
    with s.signals.protect():
        if t.grad_clip is not None:
            s.scaler.unscale_(s.opt)
            torch.nn.utils.clip_grad_norm_(s.model.parameters(), t.grad_clip)
        # fp16: a step whose gradients overflowed leaves the weights as they were (the
        # scaler then lowers its scale), and the average skips it too. The scale is read
        # only then: on a GPU each read waits for the device.
        watch = s.average is not None and s.scaler.is_enabled()
        scale = s.scaler.get_scale() if watch else None
        s.scaler.step(s.opt)
        s.scaler.update()
        with warnings.catch_warnings():
            # fp16: the scaler skips the optimizer on a step whose gradients overflowed, and
            # torch then warns that the schedule moved first. The rate follows the step count
            # on purpose, so that a skipped step does not shift the schedule.
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            s.sched.step()
        if s.average is not None and (scale is None or s.scaler.get_scale() >= scale):
            s.average.update(s.model)
        s.step += 1
    return mean_nll.item()

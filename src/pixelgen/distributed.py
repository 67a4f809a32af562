"""torch.distributed plumbing for training and evaluation (launched by ``torchrun``).

A single process is the ``world_size == 1`` case of the same code: ``Dist`` answers
rank/world questions and reduces tensors whether or not a process group exists.
Backend: NCCL on CUDA, gloo on CPU; one GPU per rank (``LOCAL_RANK``).

Failure: when a peer dies, ``torchrun``'s agent tears the job down, and a collective
waiting on the dead peer fails, after at most ``PIXELGEN_DIST_TIMEOUT`` seconds (default
600) if the peer hangs rather than exits. ``Dist.guard`` turns that failure into a
``PeerLostError`` so that the training loop can keep its checkpoint and say what happened.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .devices import parse_device
from .errors import ConfigError, TrainingError

TIMEOUT_ENV = "PIXELGEN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0


class PeerLostError(TrainingError):
    """A collective failed: another process of the job stopped, hung, or is unreachable."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(
            f"{what} failed: another process of the job stopped or cannot be reached ({detail})"
        )
        self.what = what
        self.detail = detail


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @contextmanager
    def guard(self, what: str):
        """Report a failed collective inside the block as ``PeerLostError``."""
        if not self.active:
            yield
            return
        try:
            yield
        except torch.cuda.OutOfMemoryError:
            raise
        except RuntimeError as exc:  # gloo and NCCL raise plain RuntimeErrors
            raise PeerLostError(what, _one_line(exc)) from exc

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            with self.guard("the all-reduce"):
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.active:
            with self.guard("the barrier"):
                dist.barrier()

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank (any picklable value)."""
        if not self.active:
            return obj
        box = [obj]
        with self.guard("the broadcast"):
            dist.broadcast_object_list(box, src=0)
        return box[0]


def dist_timeout() -> timedelta:
    """How long a collective may wait for a peer, from ``$PIXELGEN_DIST_TIMEOUT`` (seconds)."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"${TIMEOUT_ENV}: expected a number of seconds > 0, got {text!r}")
    return timedelta(seconds=seconds)


def init_distributed(device: str = "auto") -> tuple[Dist, torch.device]:
    """This process's ``Dist`` and device; joins the process group ``torchrun`` describes in
    the environment, if any (``device`` as in ``train.device``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return Dist(), parse_device(device, key="train.device")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if re.fullmatch(r"cuda:\d+", device) and local_world > 1:
        raise ConfigError(
            f"train.device: {device!r} would put all {local_world} processes of this node on "
            "one GPU; under torchrun use 'auto' or 'cuda' (one GPU per process, by LOCAL_RANK)"
        )
    dev = parse_device(device, key="train.device", local_rank=local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # NCCL and barrier() use the current device
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=dist_timeout())
    d = Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)
    return d, dev


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _one_line(exc: BaseException) -> str:
    """The gist of a backend error: no source location, no brackets (they are rich markup)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    return text.replace("[", "").replace("]", "").split(". ")[0].rstrip(".")

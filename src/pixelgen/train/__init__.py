"""Training: one readable entry point, :func:`train`, over a loop in parts.

Run directory layout::

    RUN/recipe.yaml              the resolved recipe
    RUN/metrics.jsonl            one JSON line per logged step and per validation
    RUN/checkpoints/last.pt      written every ``checkpoint_every`` steps, atomically
    RUN/checkpoints/best.pt      the best validation NLL so far
    RUN/curve.png                training and validation bits/dim
    RUN/samples/step_NNNNNN.png  sample grids at validation time

The parts: ``setup`` builds a :class:`~.setup.Session`; ``step.train_step`` does one
optimizer step; ``loop.train_steps`` yields what each step calls for, and the caller here
logs, validates and saves; ``signals`` and ``metrics`` hold the stop signals and the
metrics file.

Determinism: the data order is a function of (seed, epoch) and the step, dynamic
binarization of (seed, epoch, index), and nothing else draws from the global RNGs, so a
run resumed from ``last.pt`` continues exactly as the uninterrupted run (on the CPU).
Under ``torchrun`` every rank takes a disjoint slice of each global batch; gradients are
averaged by DistributedDataParallel, and only rank 0 writes files (and decides the run
directory and reads a checkpoint to resume from, then hands them to the other ranks, so
only rank 0 needs the run directory). SIGINT/SIGTERM and a lost peer stop the run at a
step boundary: rank 0 saves ``last.pt`` (atomically) and says how to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Recipe
from ..distributed import PeerLostError, shutdown
from ..errors import StorageError, TrainingError
from ..progress import make_progress
from . import metrics
from .board import Board
from .board import require as require_tensorboard
from .loop import Event, save, train_steps, validate
from .metrics import read_metrics
from .setup import Session, lr_lambda, make_autocast, make_optimizer, setup
from .signals import Stop, StopSignals
from .step import batch_indices, train_step

__all__ = [
    "Event", "Session", "Stop", "StopSignals", "TrainResult", "batch_indices", "lr_lambda",
    "make_autocast", "make_optimizer", "read_metrics", "save", "setup", "train",
    "train_step", "train_steps", "validate",
]  # fmt: skip


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    best_valid_nll: float | None
    best_valid_bits_per_dim: float | None
    interrupted: bool = False


def train(
    recipe: Recipe,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    show_progress: bool = True,
    log=print,
) -> TrainResult:
    """Train ``recipe``; returns where the run went and its best validation NLL."""
    if recipe.train.tensorboard:
        require_tensorboard()  # before any work
    s = setup(recipe, run_dir=run_dir, resume=resume, log=log)
    try:
        interrupted = _run(s, show_progress, log)
        _finish(s, interrupted, log)
    except StorageError as exc:
        raise _cannot_write(s, exc) from None
    finally:
        if s.lock is not None:
            s.lock.release()
    best = s.best
    return TrainResult(
        run_dir=s.run_dir,
        step=s.step,
        best_valid_nll=best,
        best_valid_bits_per_dim=None if best is None else s.bits(best),
        interrupted=interrupted,
    )


def _run(s: Session, show_progress: bool, log) -> bool:
    """The steps, with what each calls for; returns whether a stop signal ended them."""
    main = s.dist.is_main
    if main:
        s.signals.install()
    board = Board(s.run_dir, s.step) if main and s.recipe.train.tensorboard else None
    bar = make_progress("loss", "bpd", "rate", disable=not (show_progress and main))
    task = bar.add_task("train", total=s.total, completed=s.step, loss="", bpd="", rate="")
    try:
        with bar:
            for event in train_steps(s):
                if event.record is not None:
                    _log_record(s, event.record, bar, task, board)
                bar.update(task, completed=event.step)
                if event.validate:
                    validate(s)
                    if board is not None:
                        _board_validation(s, board)
                if event.checkpoint:
                    if main:
                        save(s, s.last_path)
                    s.dist.barrier()
    except (KeyboardInterrupt, Stop):
        if main:
            _save_on_stop(s)
            log(
                f"interrupted at step {s.step}: saved {s.last_path}; "
                f"continue with --resume --out {s.run_dir}"
            )
        return True
    except PeerLostError as exc:
        raise _peer_lost(s, exc) from None
    except torch.OutOfMemoryError:
        # Raised inside a step's forward or backward, before its parameter update: the
        # weights in memory are those of step s.step, which rank 0 keeps.
        if main:
            _save_on_stop(s)
        t = s.recipe.train
        raise TrainingError(
            f"out of memory at step {s.step + 1} (batch {t.batch_size}, accumulate "
            f"{t.accumulate}); {s.last_path} holds step {s.step}: lower train.batch_size or "
            "raise train.accumulate, then continue with --resume"
        ) from None
    finally:
        s.signals.restore()
        if board is not None:
            board.close()
    return False


def _log_record(s: Session, record: dict, bar, task, board: Board | None = None) -> None:
    if s.dist.is_main:
        metrics.append(s.run_dir, record)
        if board is not None:
            board.record(record)
    bar.update(
        task,
        loss=f"{record['nll_nats']:.2f} nats",
        bpd=f"{record['bits_per_dim']:.3f} b/d",
        rate=f"{record['images_per_s']:.0f} img/s",
    )


def _board_validation(s: Session, board: Board) -> None:
    """The validation record just written, and its sample grid."""
    last = next((r for r in reversed(read_metrics(s.run_dir)) if r["split"] == "valid"), None)
    if last is not None and last["step"] == s.step:
        board.record(last)
    board.image("samples", s.run_dir / "samples" / f"step_{s.step:06d}.png", s.step)
    board.flush()


def _save_on_stop(s: Session) -> None:
    if s.saved != s.step:
        save(s, s.last_path, final=True)


def _peer_lost(s: Session, exc: PeerLostError) -> TrainingError:
    # Every failing collective sits before the parameter update or after a finished
    # step, so the state in memory is a whole step: rank 0 keeps it.
    where = f"rank {s.dist.rank}: {exc.what} failed after step {s.step}"
    if s.dist.is_main:
        _save_on_stop(s)
        kept = f"{s.last_path} holds step {s.step}"
    else:
        kept = f"rank 0 keeps the last checkpoint in {s.last_path}"
    return TrainingError(
        f"{where}: another process of the job stopped or cannot be reached "
        f"({exc.detail}); {kept}: continue with --resume --out {s.run_dir}"
    )


def _cannot_write(s: Session, exc: StorageError) -> TrainingError:
    # A full disk or a folder gone read-only: the failed write left nothing behind, and
    # last.pt is the last one that was written whole (no new save is tried: it would fail).
    fix = "free some space" if exc.full else "make it writable"
    if s.saved is None:
        return TrainingError(f"{exc}; no checkpoint was written yet: {fix}, then run it again")
    return TrainingError(
        f"{exc}; {s.last_path} holds step {s.saved}: {fix}, then continue with "
        f"--resume --out {s.run_dir}"
    )


def _finish(s: Session, interrupted: bool, log) -> None:
    if s.owns_group:
        # Both ranks reach the end before the group goes away, and the DDP wrapper (which
        # holds the group) is released first: tearing gloo down under a live reducer or
        # a peer still in a collective aborts the process at exit.
        if not interrupted:
            s.dist.barrier()
        s.net = None
        shutdown()
    if s.dist.is_main and not interrupted:
        metrics.plot(s.run_dir, Path(s.recipe.source).stem, levels=s.valid_set.levels)
        log(
            f"done: step {s.step}, best validation NLL {s.best:.3f} nats "
            f"({s.bits(s.best):.4f} bits/dim); checkpoints in {s.run_dir / 'checkpoints'}"
        )

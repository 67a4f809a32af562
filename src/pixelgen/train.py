"""The training loop: one readable loop from a recipe to a run directory.

Run directory layout::

    RUN/recipe.yaml              the resolved recipe
    RUN/metrics.jsonl            one JSON line per logged step and per validation
    RUN/checkpoints/last.pt      written every ``checkpoint_every`` steps, atomically
    RUN/checkpoints/best.pt      the best validation NLL so far
    RUN/curve.png                training and validation bits/dim
    RUN/samples/step_NNNNNN.png  sample grids at validation time

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

import json
import math
import signal
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoint as ck
from .config import Recipe, dump_recipe, recipe_to_dict
from .data import load_split
from .distributed import Dist, PeerLostError, init_distributed, shutdown
from .errors import ConfigError, PixelgenError, TrainingError
from .evaluate import check_compatible, evaluate
from .io import atomic_write
from .plots import plot_curves
from .registry import create_model


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    best_valid_nll: float | None
    best_valid_bits_per_dim: float | None
    interrupted: bool = False


class _Stop(Exception):
    """Raised by the SIGTERM handler so that a terminated run saves like Ctrl-C."""


class _StopSignals:
    """SIGINT and SIGTERM stop the run, but never inside ``protect()``: there the signal
    waits until the block ends, so that a saved step always matches its weights (the
    update of the parameters and of the step counter is one block) and no save is cut
    short by a second signal (torchrun sends SIGTERM after a peer died)."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None
        self.previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.depth:
            self.pending = signum
            return
        raise _Stop() if signum == signal.SIGTERM else KeyboardInterrupt()

    @contextmanager
    def protect(self, *, deliver: bool = True):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if deliver and not self.depth and self.pending is not None:
            signum, self.pending = self.pending, None
            raise _Stop() if signum == signal.SIGTERM else KeyboardInterrupt()


def default_run_dir(recipe: Recipe, resume: bool) -> Path:
    stem = Path(recipe.source).stem or "run"
    root = ck.runs_root()
    if resume:
        runs = sorted(root.glob(f"{stem}-*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"--resume: no earlier run of {stem!r} under {root}/ (use --out)")
        return runs[-1].parent.parent
    return root / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def batch_indices(step: int, num_images: int, batch: int, seed: int) -> tuple[torch.Tensor, int]:
    """The global batch of ``step``: a slice of the seeded permutation of its epoch."""
    per_epoch = num_images // batch
    epoch, k = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(num_images, generator=gen)
    return perm[k * batch : (k + 1) * batch], epoch


def lr_lambda(recipe: Recipe, total_steps: int):
    t = recipe.train

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / t.warmup_steps) if t.warmup_steps else 1.0
        if t.schedule == "cosine":
            progress = min(1.0, step / max(1, total_steps))
            return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
        if t.schedule == "exponential":
            return warm * t.lr_decay**step
        return warm

    return factor


def make_optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    t = recipe.train
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.RMSprop(params, lr=t.lr, weight_decay=t.weight_decay)


def train(
    recipe: Recipe,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    show_progress: bool = True,
    log=print,
) -> TrainResult:
    """Train ``recipe``; returns where the run went and its best validation NLL."""
    t = recipe.train
    owns_group = not torch.distributed.is_initialized()
    dist, device = init_distributed(t.device)
    owns_group = owns_group and dist.active
    if t.batch_size % (dist.world_size * t.accumulate):
        raise ConfigError(
            f"train.batch_size: {t.batch_size} is not divisible by {dist.world_size} process(es) "
            f"x train.accumulate={t.accumulate}"
        )
    autocast = _autocast(t.precision, device)

    def locate() -> tuple[Path, ck.Checkpoint | None]:
        where = Path(run_dir) if run_dir else default_run_dir(recipe, resume)
        last = where / "checkpoints" / "last.pt"
        if resume and not last.is_file():
            raise ConfigError(f"--resume: {last} does not exist")
        if not resume and last.is_file():
            raise ConfigError(f"{where} already holds a run: pass --resume, or choose --out")
        return where, ck.load_checkpoint(last) if resume else None

    run_dir, resume_from = _on_main(dist, locate)
    last_path = run_dir / "checkpoints" / "last.pt"

    d = recipe.data
    train_set = load_split(d.name, "train", root=d.root, **d.options())
    valid_set = load_split(d.name, "valid", root=d.root, **d.options())
    torch.manual_seed(t.seed)
    model = create_model(
        recipe.model.name,
        channels=train_set.channels,
        levels=train_set.levels,
        **recipe.model.kwargs(),
    ).to(device)
    check_compatible(model, valid_set)
    per_epoch = len(train_set) // t.batch_size
    if per_epoch == 0:
        raise ConfigError(f"train.batch_size: {t.batch_size} exceeds the {len(train_set)} images")
    total = t.max_steps if t.max_steps is not None else t.epochs * per_epoch

    opt = make_optimizer(recipe, model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(recipe, total))
    scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
    step, best = 0, None
    if resume_from is not None:
        step, best = _restore(resume_from, recipe, model, opt, sched, scaler, device)
    net = model
    if t.compile:
        net = torch.compile(net)
    if dist.active:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)

    if dist.is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(dump_recipe(recipe))
        _trim_metrics(run_dir / "metrics.jsonl", step)
        log(f"run directory: {run_dir}")
        log(
            f"model: {recipe.model.name} ({_count(model):,} parameters) on {device}"
            f"{f' x {dist.world_size} processes' if dist.active else ''}"
        )
        log(f"data: {train_set.description}")

    dims = train_set.channels * train_set.height * train_set.width
    state = {"step": step, "best": best, "saved": step if resume_from is not None else None}

    signals = _StopSignals()

    def save(path: Path, *, final: bool = False) -> None:
        # A stop signal waits for the end of the write; the last save of a run drops it.
        with signals.protect(deliver=not final):
            _save(path)
            if path == last_path:
                state["saved"] = state["step"]

    def _save(path: Path) -> None:
        ck.save_checkpoint(
            path,
            ck.Checkpoint(
                model_name=recipe.model.name,
                hparams=dict(model.hparams),
                weights=model.state_dict(),
                recipe=recipe_to_dict(recipe),
                data=train_set.info(),
                step=state["step"],
                state={
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": ck.rng_state(),
                    "best_valid_nll": state["best"],
                    "data_position": _position(state["step"], per_epoch),
                    "world_size": dist.world_size,
                },
            ),
        )

    def validate() -> None:
        res = evaluate(
            model,
            valid_set,
            batch_size=recipe.eval.batch_size,
            max_images=t.eval_max_images,
            device=device,
            dist=dist,
        )
        if not dist.is_main:
            return
        _append(
            run_dir / "metrics.jsonl",
            {
                "step": state["step"],
                "split": "valid",
                "nll_nats": res.nll_nats,
                "bits_per_dim": res.bits_per_dim,
                "num_images": res.num_images,
            },
        )
        if state["best"] is None or res.nll_nats < state["best"]:
            state["best"] = res.nll_nats
            save(run_dir / "checkpoints" / "best.pt")
        _sample_grid(model, recipe, train_set, run_dir, state["step"])
        _plot(run_dir, recipe)

    if dist.is_main:
        signals.install()
    interrupted = False
    progress = _progress(show_progress and dist.is_main)
    task = progress.add_task("train", total=total, completed=step, loss="", bpd="", rate="")
    window, tic = [], time.perf_counter()
    try:
        with progress:
            while state["step"] < total:
                idx, epoch = batch_indices(state["step"], len(train_set), t.batch_size, t.seed)
                train_set.set_epoch(epoch)
                share = t.batch_size // dist.world_size
                local = idx[dist.rank * share : (dist.rank + 1) * share]
                x = torch.stack([train_set[int(i)] for i in local]).to(device, torch.long)
                net.train()
                opt.zero_grad(set_to_none=True)
                total_nll = torch.zeros((), device=device, dtype=torch.float64)
                micro = x.chunk(t.accumulate)
                for m, xb in enumerate(micro):
                    sync = m == len(micro) - 1 or not dist.active
                    with nullcontext() if sync else net.no_sync():
                        with autocast():
                            logits = net(xb)  # (b, L, C, H, W)
                            nll = F.cross_entropy(logits.float(), xb, reduction="sum")
                        # DDP all-reduces the gradients during the last micro-batch's backward
                        with dist.guard("the gradient all-reduce") if sync else nullcontext():
                            scaler.scale(nll / len(x)).backward()
                    total_nll += nll.detach().double()
                mean_nll = dist.all_reduce_sum(total_nll) / t.batch_size
                if not torch.isfinite(mean_nll):
                    raise TrainingError(
                        f"non-finite loss at step {state['step'] + 1}; stopped, and "
                        f"{last_path} keeps the last good state (lower train.lr or set "
                        "train.grad_clip)"
                    )
                with signals.protect():
                    if t.grad_clip is not None:
                        scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                    scaler.step(opt)
                    scaler.update()
                    sched.step()
                    state["step"] += 1
                s = state["step"]
                window.append(mean_nll.item())
                if s % t.log_every == 0 or s == total:
                    elapsed = time.perf_counter() - tic
                    loss = sum(window) / len(window)
                    rate = len(window) * t.batch_size / elapsed
                    if dist.is_main:
                        _append(
                            run_dir / "metrics.jsonl",
                            {
                                "step": s,
                                "split": "train",
                                "nll_nats": loss,
                                "bits_per_dim": loss / (dims * math.log(2)),
                                "lr": sched.get_last_lr()[0],
                                "images_per_s": rate,
                            },
                        )
                    progress.update(
                        task,
                        loss=f"{loss:.2f} nats",
                        bpd=f"{loss / (dims * math.log(2)):.3f} b/d",
                        rate=f"{rate:.0f} img/s",
                    )
                    window, tic = [], time.perf_counter()
                progress.update(task, completed=s)
                if s % t.eval_every == 0 or s == total:
                    validate()
                if s % t.checkpoint_every == 0 or s == total:
                    if dist.is_main:
                        save(last_path)
                    dist.barrier()
    except (KeyboardInterrupt, _Stop):
        interrupted = True
        if dist.is_main:
            if state["saved"] != state["step"]:
                save(last_path, final=True)
            log(
                f"interrupted at step {state['step']}: saved {last_path}; "
                f"continue with --resume --out {run_dir}"
            )
    except PeerLostError as exc:
        # Every failing collective sits before the parameter update or after a finished
        # step, so the state in memory is a whole step: rank 0 keeps it.
        where = f"rank {dist.rank}: {exc.what} failed after step {state['step']}"
        if dist.is_main:
            if state["saved"] != state["step"]:
                save(last_path, final=True)
            kept = f"{last_path} holds step {state['step']}"
        else:
            kept = f"rank 0 keeps the last checkpoint in {last_path}"
        raise TrainingError(
            f"{where}: another process of the job stopped or cannot be reached "
            f"({exc.detail}); {kept}: continue with --resume --out {run_dir}"
        ) from None
    finally:
        signals.restore()
    if owns_group:
        # Both ranks reach the end before the group goes away, and the DDP wrapper (which
        # holds the group) is released first: tearing gloo down under a live reducer or
        # a peer still in a collective aborts the process at exit.
        if not interrupted:
            dist.barrier()
        del net
        shutdown()
    if dist.is_main and not interrupted:
        _plot(run_dir, recipe)
        log(
            f"done: step {state['step']}, best validation NLL "
            f"{state['best']:.3f} nats ({state['best'] / (dims * math.log(2)):.4f} bits/dim); "
            f"checkpoints in {run_dir / 'checkpoints'}"
        )
    best_nll = state["best"]
    return TrainResult(
        run_dir=run_dir,
        step=state["step"],
        best_valid_nll=best_nll,
        best_valid_bits_per_dim=None if best_nll is None else best_nll / (dims * math.log(2)),
        interrupted=interrupted,
    )


def _on_main(dist: Dist, fn):
    """``fn()`` run on rank 0 only, its result (or its error) on every rank: rank 0 alone
    needs to see the run directory, and all ranks then agree on it or fail together."""
    if not dist.active:
        return fn()
    result = error = None
    if dist.is_main:
        try:
            result = fn()
        except PixelgenError as exc:
            error = exc
    result, error = dist.broadcast_object((result, error))
    if error is not None:
        raise error
    return result


def _autocast(precision: str, device: torch.device):
    """A factory of the autocast context for ``train.precision`` (fp32: none)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        return nullcontext
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision: bf16 is not supported by {device}; use fp16 or fp32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast(device.type, dtype=dtype):
            pass
    # torch only warns (and silently runs fp32) when a device lacks the dtype
    if any("autocast" in str(w.message).lower() for w in caught):
        raise ConfigError(
            f"train.precision: {precision} autocast is not supported on {device.type} by "
            f"torch {torch.__version__}; use fp32 or bf16"
        )
    return lambda: torch.autocast(device.type, dtype=dtype)


def _restore(ckpt, recipe, model, opt, sched, scaler, device) -> tuple[int, float | None]:
    path = ckpt.path
    saved = ckpt.recipe
    for section in ("model", "data"):
        if saved.get(section) != recipe_to_dict(recipe)[section]:
            raise ConfigError(
                f"--resume: the recipe's {section} section differs from the run's ({path}); "
                "only train/eval/sample settings may change on resume"
            )
    model.load_state_dict(ckpt.weights)
    st = ckpt.state
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    scaler.load_state_dict(st["scaler"])
    ck.set_rng_state(st["rng"])
    model.to(device)
    return ckpt.step, st.get("best_valid_nll")


def _position(step: int, per_epoch: int) -> dict[str, int]:
    epoch, index = divmod(step, per_epoch)
    return {"epoch": epoch, "index": index}


def _progress(enabled: bool):
    from .progress import make_progress

    return make_progress("loss", "bpd", "rate", disable=not enabled)


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _trim_metrics(path: Path, step: int) -> None:
    """On resume, drop records from steps after the checkpoint (they will be redone)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    atomic_write(path, lambda f: f.write("".join(ln + "\n" for ln in keep).encode()))


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln]


def _plot(run_dir: Path, recipe: Recipe) -> None:
    rows = read_metrics(run_dir)
    series = {
        split: [(r["step"], r["bits_per_dim"]) for r in rows if r["split"] == split]
        for split in ("train", "valid")
    }
    plot_curves(series, run_dir / "curve.png", title=Path(recipe.source).stem)


def _sample_grid(model, recipe: Recipe, data, run_dir: Path, step: int) -> None:
    """A small grid of samples at validation time (its own RNG: training is unaffected)."""
    if not hasattr(model, "sample"):
        return
    from .images import save_grid

    s = recipe.sample
    gen = torch.Generator().manual_seed(s.seed)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = model.sample(
            s.n,
            size=(data.height, data.width),
            generator=gen,
            temperature=s.temperature,
            method=s.method,
        )
    model.train(was_training)
    out = run_dir / "samples" / f"step_{step:06d}.png"
    out.parent.mkdir(exist_ok=True)
    save_grid(x.cpu(), data.levels, out, nrow=s.nrow, scale=2 if data.height <= 32 else 1)


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())

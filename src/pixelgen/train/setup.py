"""Everything a run needs before its first step, in one :class:`Session`: the run
directory (and the checkpoint to resume from), the data, the model, the optimizer, the
schedule, the process group and the device."""

from __future__ import annotations

import inspect
import math
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from .. import checkpoint as ck
from .. import conditioning
from ..config import Recipe, dump_recipe, recipe_to_dict
from ..data import load_split
from ..distributed import Dist, init_distributed
from ..errors import CheckpointError, ConfigError, PixelgenError
from ..evaluate import check_compatible
from ..io import atomic_write
from ..registry import create_model
from . import metrics
from .average import WeightAverage
from .lock import RunLock
from .signals import StopSignals


@dataclass
class Session:
    """A run in progress. ``step``, ``best`` and ``saved`` change as it trains."""

    recipe: Recipe
    run_dir: Path
    dist: Dist
    device: torch.device
    autocast: Any  # () -> context manager
    train_set: Any
    valid_set: Any
    model: torch.nn.Module
    net: torch.nn.Module  # the model as trained: compiled and/or wrapped in DDP
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    total: int  # steps of the whole run
    owns_group: bool
    step: int = 0
    best: float | None = None  # best validation NLL (nats)
    saved: int | None = None  # the step last.pt holds
    resumed_from: Path | None = None
    signals: StopSignals = field(default_factory=StopSignals)
    lock: RunLock | None = None  # rank 0's hold on the run directory
    condition: conditioning.ConditionInfo | None = None  # None: an unconditional model
    average: WeightAverage | None = None  # the weights' moving average (train.ema)

    @property
    def scored_model(self) -> torch.nn.Module:
        """The weights validation scores and checkpoints keep: the moving average where
        the recipe sets ``train.ema``, else the trained model."""
        return self.model if self.average is None else self.average.module

    @property
    def last_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def per_epoch(self) -> int:
        return len(self.train_set) // self.recipe.train.batch_size

    @property
    def dims(self) -> int:
        d = self.train_set
        return d.channels * d.height * d.width

    def bits(self, nats: float) -> float:
        return nats / (self.dims * math.log(2))


def setup(recipe: Recipe, *, run_dir: str | Path | None, resume: bool, log) -> Session:
    """Build the session of ``recipe`` (resumed from ``RUN/checkpoints/last.pt`` with
    ``resume``); rank 0 writes the resolved recipe and says what it built."""
    t = recipe.train
    owns_group = not torch.distributed.is_initialized()
    dist, device = init_distributed(t.device)
    if t.batch_size % (dist.world_size * t.accumulate):
        raise ConfigError(
            f"train.batch_size: {t.batch_size} is not divisible by {dist.world_size} process(es) "
            f"x train.accumulate={t.accumulate}"
        )
    autocast = make_autocast(t.precision, device)
    held: list[RunLock] = []  # rank 0 locks the run directory before it reads anything there
    try:
        where, resume_from, note = _on_main(dist, lambda: _locate(recipe, run_dir, resume, held))
        if dist.active and recipe.data.download:
            # rank 0 fetches what is missing, alone: ranks writing one file at once corrupt it
            _on_main(dist, lambda: _fetch_missing(recipe))
        s = _build(recipe, where, resume_from, dist, device, autocast, owns_group)
        s.lock = held[0] if held else None
        if note and dist.is_main:
            log(note)
        if dist.is_main:
            _announce(s, log)
    except BaseException:
        for lock in held:
            lock.abandon()
        raise
    return s


def _fetch_missing(recipe: Recipe) -> None:
    d = recipe.data
    for split in ("train", "valid"):
        load_split(d.name, split, root=d.root, **d.options())


def _build(recipe, where, resume_from, dist, device, autocast, owns_group) -> Session:
    t = recipe.train
    d = recipe.data
    opts = d.options()
    if dist.active:
        opts.pop("download", None)  # fetched by rank 0 above
    train_set = load_split(d.name, "train", root=d.root, **opts)
    valid_set = load_split(d.name, "valid", root=d.root, **opts)
    condition = conditioning.for_data(recipe.model.condition, train_set)
    conditioning.label_data(condition, valid_set)
    cond = {} if condition is None else {"cond_channels": condition.channels}
    torch.manual_seed(t.seed)
    model = create_model(
        recipe.model.name,
        channels=train_set.channels,
        levels=train_set.levels,
        **cond,
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
    s = Session(
        recipe=recipe, run_dir=where, dist=dist, device=device, autocast=autocast,
        train_set=train_set, valid_set=valid_set, model=model, net=model, opt=opt,
        sched=sched, scaler=scaler, total=total, owns_group=owns_group and dist.active,
        condition=condition,
    )  # fmt: skip
    if resume_from is not None:
        _restore(s, resume_from)
    if t.ema is not None and s.average is None:  # a new average, or one turned on at resume
        s.average = WeightAverage(model, t.ema)
    s.net = _wrap(s)
    return s


def default_run_dir(recipe: Recipe, resume: bool) -> Path:
    stem = Path(recipe.source).stem or "run"
    root = ck.runs_root()
    if resume:
        runs = sorted(root.glob(f"{stem}-*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"--resume: no earlier run of {stem!r} under {root}/ (use --out)")
        return runs[-1].parent.parent
    return root / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


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
    """The recipe's optimizer over ``params``, in torch's fastest implementation of it
    for them (:func:`implementation`)."""
    t = recipe.train
    params = list(params)
    kind = torch.optim.Adam if t.optimizer == "adam" else torch.optim.RMSprop
    return kind(params, lr=t.lr, weight_decay=t.weight_decay, **implementation(recipe, params))


def implementation(recipe: Recipe, params: list[torch.Tensor]) -> dict[str, bool]:
    """Adam's fused kernel (one call updates every parameter) where torch has it: floating
    parameters on CUDA, or on the CPU from torch 2.4, no fp16 loss scaling; otherwise, and
    for RMSProp, which has no fused kernel, the multi-tensor (``foreach``) loop. The
    default loop runs ~8 operations per parameter in Python: at the MNIST paper sizes
    (74-96 parameters) 4-7 ms of a 110-140 ms step, against 0.5 ms fused (README,
    *Speed*). The update rule is the same; the last bits of the result may differ. A
    resumed run gets it again (``_restore``)."""
    if recipe.train.optimizer != "adam":
        return {"foreach": True}
    devices = ("cuda", "cpu") if _torch_version() >= (2, 4) else ("cuda",)
    fusable = all(p.is_floating_point() and p.device.type in devices for p in params)
    fused = fusable and recipe.train.precision != "fp16"
    return {"fused": fused, "foreach": not fused}


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def _locate(recipe: Recipe, run_dir: str | Path | None, resume: bool, held: list):
    """``(run directory, checkpoint to resume from or None, a warning or None)``; the run
    directory's lock goes into ``held``."""
    where = Path(run_dir) if run_dir else default_run_dir(recipe, resume)
    lock = RunLock(where)
    lock.acquire()
    held.append(lock)
    _remove_stale_temporaries(where)
    last = where / "checkpoints" / "last.pt"
    prev = ck.previous_path(last)
    if not resume:
        if last.is_file() or prev.is_file():
            raise ConfigError(f"{where} already holds a run: pass --resume, or choose --out")
        return where, None, None
    if not last.is_file() and not prev.is_file():
        raise ConfigError(f"--resume: {last} does not exist")
    try:
        return where, ck.load_checkpoint(last), None
    except CheckpointError as exc:
        if not prev.is_file():
            raise
        # last.pt damaged or missing: one save back. A damaged last.pt is set aside, so
        # that the next save does not keep it as last.prev.pt over the intact one.
        fallback = ck.load_checkpoint(prev)
        aside = ""
        if last.is_file():
            damaged = last.with_name("last.damaged.pt")
            last.replace(damaged)
            aside = f" ({last.name} kept as {damaged.name})"
        note = f"warning: {exc}; resuming from {prev} (step {fallback.step}){aside}"
        return where, fallback, note


# The temporary files train writes (io.atomic_write names them ".NAME.XXXX.tmp").
_OWN_TEMPORARIES = {
    "": (".recipe.yaml.", ".metrics.jsonl.", ".curve.png."),
    "checkpoints": (".last.pt.", ".last.prev.pt.", ".best.pt."),
    "samples": (".step_",),
}


def _remove_stale_temporaries(where: Path) -> None:
    # Left by a train killed mid-write; the lock says no other train is alive to finish
    # them. Those of an `eval` running beside it (eval.json) are not train's to remove.
    for sub, prefixes in _OWN_TEMPORARIES.items():
        for tmp in (where / sub).glob(".*.tmp"):
            if tmp.name.startswith(prefixes):
                tmp.unlink(missing_ok=True)


def _identity(section: dict | None) -> dict:
    """What must not change on resume: the set values, without ``download`` (which only
    says how to get the files). A key that a later version added, unset, compares equal to
    its absence, so runs started by older versions still resume."""
    return {k: v for k, v in (section or {}).items() if v is not None and k != "download"}


def _restore(s: Session, ckpt: ck.Checkpoint) -> None:
    saved = ckpt.recipe
    for section in ("model", "data"):
        if _identity(saved.get(section)) != _identity(recipe_to_dict(s.recipe)[section]):
            raise ConfigError(
                f"--resume: the recipe's {section} section differs from the run's "
                f"({ckpt.path}); only train/eval/sample settings may change on resume"
            )
    saved_condition = ckpt.condition()
    if saved_condition != s.condition:  # same data section, other classes (a folder's)

        def said(c: conditioning.ConditionInfo | None) -> str:
            if c is None:
                return "no condition"
            names = ", ".join(c.names[:5]) + (", ..." if c.classes > 5 else "")
            return f"{c.classes} classes ({names})"

        raise ConfigError(
            f"--resume: the run's model has {said(saved_condition)} ({ckpt.path}) but the "
            f"data set now has {said(s.condition)}; start a new run for the new classes"
        )
    st = ckpt.state
    # With an average, the checkpoint's weights are the average and the trained ones
    # travel in the training state.
    s.model.load_state_dict(st.get("train_weights", ckpt.weights))
    if s.recipe.train.ema is not None and "average" in st:
        s.average = WeightAverage.restored(s.model, ckpt.weights, st["average"], s.recipe.train.ema)
    # This process's implementation, not the saved run's, and set before loading: torch
    # places each moment's step counter by the loaded groups' flags (on the parameter's
    # device for the fused kernel, on the CPU otherwise).
    saved = dict(st["optimizer"])
    saved["param_groups"] = [
        {**g, **implementation(s.recipe, group["params"])}
        for g, group in zip(saved["param_groups"], s.opt.param_groups, strict=True)
    ]
    s.opt.load_state_dict(saved)
    s.sched.load_state_dict(st["scheduler"])
    s.scaler.load_state_dict(st["scaler"])
    ck.set_rng_state(st["rng"])
    s.model.to(s.device)
    s.step, s.best, s.saved = ckpt.step, st.get("best_valid_nll"), ckpt.step
    s.resumed_from = ckpt.path


def _wrap(s: Session) -> torch.nn.Module:
    net = s.model
    if s.recipe.train.compile:
        net = torch.compile(net)
    if s.dist.active:
        ids = [s.device.index] if s.device.type == "cuda" else None
        # The only buffers are the masks, built alike on every rank and never changed, so
        # the forward pass needs no broadcast: the one collective of a step is then the
        # gradient all-reduce inside backward, which train_step guards (a lost peer there
        # is reported as such, not as an internal error).
        ddp = torch.nn.parallel.DistributedDataParallel
        newer = "forward_sync_buffers" in inspect.signature(ddp).parameters
        no_sync = {"forward_sync_buffers" if newer else "broadcast_buffers": False}
        net = ddp(net, device_ids=ids, **no_sync)
    return net


def _announce(s: Session, log) -> None:
    (s.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    atomic_write(s.run_dir / "recipe.yaml", dump_recipe(s.recipe).encode())
    metrics.trim(s.run_dir, s.step)
    log(f"run directory: {s.run_dir}")
    params = sum(p.numel() for p in s.model.parameters())
    procs = f" x {s.dist.world_size} processes" if s.dist.active else ""
    log(f"model: {s.recipe.model.name} ({params:,} parameters) on {s.device}{procs}")
    log(f"data: {s.train_set.description}")
    if s.condition is not None:
        names = ", ".join(s.condition.names[:10]) + (", ..." if s.condition.classes > 10 else "")
        log(f"condition: class ({s.condition.classes} classes: {names})")
    if s.resumed_from is not None:
        seen = s.step * s.recipe.train.batch_size
        log(
            f"resuming from {s.resumed_from}: step {s.step} of {s.total}, {seen:,} images "
            f"seen (epoch {s.step // s.per_epoch + 1})"
        )
    if s.average is not None:
        n = s.average.count
        since = f", {n:,} updates so far" if n else (", from this step" if s.step else "")
        log(
            f"weights: moving average (decay {s.average.decay}{since}); validation and "
            "checkpoints use it"
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


def make_autocast(precision: str, device: torch.device):
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

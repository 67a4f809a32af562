"""Evaluate a checkpoint on a split and record the result (``pixelgen eval``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import recipe_from_dict
from .data import load_split
from .distributed import resolve_device
from .errors import CheckpointError, ConfigError
from .evaluate import evaluate
from .io import atomic_write
from .progress import make_progress
from .sources import open_checkpoint

SPLITS = ("test", "valid", "train")


def evaluate_checkpoint(
    path: str | Path | None,
    *,
    split: str = "test",
    max_images: int | None = None,
    batch_size: int = 64,
    data_root: str | None = None,
    device: str = "auto",
    show_progress: bool = True,
    log=print,
) -> dict:
    """The eval report dict: split, num_images, nll_nats, bits_per_dim, nll_nats_stderr,
    checkpoint, model, data (and step, time). Appended to ``RUN/eval.json`` when the
    checkpoint lives in a run directory."""
    if split not in SPLITS:
        raise ConfigError(f"--split: must be one of {', '.join(SPLITS)}, got {split!r}")
    ckpt, note = open_checkpoint(path)
    if note:
        log(note)
    if not ckpt.recipe:
        raise CheckpointError(
            f"{ckpt.path}: records no recipe, so its data set is unknown; evaluate the training "
            "checkpoint it was exported from"
        )
    dev = resolve_device(device)
    model = ckpt.build_model(dev)
    recipe = recipe_from_dict(ckpt.recipe, source=str(ckpt.path))
    d = recipe.data
    data = load_split(d.name, split, root=data_root or d.root, **d.options())
    n = len(data) if max_images is None else min(max_images, len(data))
    with make_progress(disable=not show_progress) as bar:
        task = bar.add_task(f"eval {split}", total=n)
        res = evaluate(
            model,
            data,
            batch_size=batch_size,
            max_images=max_images,
            device=dev,
            progress=lambda k: bar.advance(task, k),
        )
    report = {
        "split": split,
        "num_images": res.num_images,
        "nll_nats": res.nll_nats,
        "bits_per_dim": res.bits_per_dim,
        "nll_nats_stderr": res.nll_nats_stderr,
        "checkpoint": str(ckpt.path),
        "model": {"name": ckpt.model_name, "hparams": ckpt.hparams},
        "data": data.description,
        "step": ckpt.step,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    run_dir = ckpt.path.parent.parent
    if ckpt.path.parent.name == "checkpoints" and (run_dir / "recipe.yaml").exists():
        _append_json_list(run_dir / "eval.json", report)
    return report


def _append_json_list(path: Path, record: dict) -> None:
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    atomic_write(path, lambda f: f.write((json.dumps(records, indent=2) + "\n").encode()))

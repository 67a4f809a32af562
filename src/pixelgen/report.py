"""Evaluate a checkpoint on a split and record the result (``pixelgen eval``), with, on
request, pictures of where and on what the model is unsure (``--report DIR``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .config import recipe_from_dict
from .data import load_split
from .devices import parse_device
from .errors import CheckpointError, ConfigError
from .evaluate import EvalResult, evaluate
from .images import grid_scale, save_grid
from .io import atomic_write
from .plots import plot_heatmap, plot_histogram
from .progress import make_progress
from .sources import open_checkpoint

SPLITS = ("test", "valid", "train")


def evaluate_checkpoint(
    path: str | Path | None,
    *,
    split: str | None = None,
    max_images: int | None = None,
    batch_size: int | None = None,
    data_root: str | None = None,
    device: str = "auto",
    show_progress: bool = True,
    report_dir: str | Path | None = None,
    log=print,
) -> dict:
    """The eval report dict: split, num_images, nll_nats, bits_per_dim, nll_nats_stderr,
    checkpoint, model, data (and step, time). Appended to ``RUN/eval.json`` when the
    checkpoint lives in a run directory. ``split``, ``max_images`` and ``batch_size`` left
    as None come from the recipe's ``eval`` section. With ``report_dir``,
    :func:`write_report` also writes its pictures there."""
    if split is not None and split not in SPLITS:
        raise ConfigError(f"--split: must be one of {', '.join(SPLITS)}, got {split!r}")
    ckpt, note = open_checkpoint(path)
    if note:
        log(note)
    recipe_eval = ckpt.section("eval")
    split = split or recipe_eval.split
    batch_size = batch_size or recipe_eval.batch_size
    max_images = max_images or recipe_eval.max_images
    if not ckpt.recipe:
        raise CheckpointError(
            f"{ckpt.path}: records no recipe, so its data set is unknown; evaluate the training "
            "checkpoint it was exported from"
        )
    dev = parse_device(device)
    model = ckpt.build_model(dev)
    d = recipe_from_dict(ckpt.recipe, source=str(ckpt.path)).data
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
            details=report_dir is not None,
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
    if report_dir is not None:
        report["report"] = write_report(Path(report_dir), report, res, data)
    run_dir = ckpt.path.parent.parent
    if ckpt.path.parent.name == "checkpoints" and (run_dir / "recipe.yaml").exists():
        _append_json_list(run_dir / "eval.json", report)
    return report


def write_report(out: Path, report: dict, res: EvalResult, data, count: int = 8) -> dict[str, str]:
    """Write, into ``out``: ``heatmap.png`` (the mean NLL at each pixel position over the
    split), ``histogram.png`` (per-image NLL), ``most_likely.png`` and ``least_likely.png``
    (the ``count`` images of lowest and of highest NLL, in that order), and
    ``report.json`` (``report`` with those images' indices and NLLs and the per-position
    map). ``res`` comes from ``evaluate(details=True)``. Returns the files by role."""
    out.mkdir(parents=True, exist_ok=True)
    nll = res.per_image  # (N,) nats
    order = torch.argsort(nll)
    picks = {"most_likely": order[:count], "least_likely": order.flip(0)[:count]}
    where = f"{report['split']} split, {res.num_images} images"
    name = report["model"]["name"]
    files = {k: out / f"{k}.png" for k in ("heatmap", "histogram", *picks)}
    plot_heatmap(
        res.per_position.numpy(), files["heatmap"], title=f"{name}: mean NLL per pixel ({where})"
    )
    plot_histogram(nll.numpy(), files["histogram"], title=f"{name}: NLL per image ({where})")
    detail = dict(report)
    for key, idx in picks.items():
        images = torch.stack([data[int(i)] for i in idx])  # (count, C, H, W)
        scale = grid_scale(tuple(images.shape[-2:]))
        save_grid(images, data.levels, files[key], nrow=count, scale=scale)
        detail[key] = [{"index": int(i), "nll_nats": float(nll[i])} for i in idx]
    detail["per_position_nll_nats"] = res.per_position.tolist()
    files["json"] = out / "report.json"
    _write_json(files["json"], detail)
    return {k: str(v) for k, v in files.items()}


def _append_json_list(path: Path, record: dict) -> None:
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    _write_json(path, records)


def _write_json(path: Path, value) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(value, indent=2) + "\n").encode()))

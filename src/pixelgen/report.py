"""Evaluate a checkpoint on a split and record the result (``pixelgen eval``), with, on
request, pictures of where and on what the model is unsure (``--report DIR``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from . import conditioning
from .config import recipe_from_dict
from .data import load_split
from .devices import parse_device
from .errors import CheckpointError, ConfigError, StorageError
from .evaluate import EvalResult, evaluate
from .images import check_writable, grid_scale, save_grid
from .io import all_or_none, atomic_write, storage_error
from .plots import plot_heatmap, plot_histogram
from .progress import make_progress
from .sources import open_checkpoint
from .text import first_line

SPLITS = ("test", "valid", "train")


def evaluate_checkpoint(
    path: str | Path | None,
    *,
    split: str | None = None,
    max_images: int | None = None,
    batch_size: int | None = None,
    data_root: str | None = None,
    download: bool = False,
    device: str = "auto",
    show_progress: bool = True,
    report_dir: str | Path | None = None,
    json_path: str | Path | None = None,
    log=print,
) -> dict:
    """The eval report dict: split, num_images, nll_nats, bits_per_dim, nll_nats_stderr,
    checkpoint, model, data (and step, time; for a model of parts, ``parts``: each part's
    nll_nats, bits_per_dim and dims). Appended to ``RUN/eval.json`` when the
    checkpoint lives in a run directory. ``split``, ``max_images`` and ``batch_size`` left
    as None come from the recipe's ``eval`` section. With ``report_dir``,
    :func:`write_report` also writes its pictures there; with ``json_path``, the dict is
    also written there. The outputs are checked before the work and written all or none."""
    _check_outputs(split, json_path, report_dir)
    ckpt, note = open_checkpoint(path)
    if note:
        log(note)
    recipe_eval = ckpt.section("eval")
    split = split or recipe_eval.split
    batch_size = batch_size or recipe_eval.batch_size
    max_images = max_images or recipe_eval.max_images
    record = _run_record(ckpt)
    dev = parse_device(device)
    model = ckpt.build_model(dev)
    data, condition = _eval_data(ckpt, split, data_root, download)
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
    report = _report_dict(split, res, ckpt, data, condition)
    with all_or_none([]) as written:
        if report_dir is not None:
            report["report"] = write_report(Path(report_dir), report, res, data, written=written)
        if json_path is not None:
            _write_json(Path(json_path), report)
            written.append(Path(json_path))
        if record is not None:
            _write_json(record, [*_read_json_list(record), report])
    return report


def _check_outputs(split: str | None, json_path, report_dir) -> None:
    """Refuse, before any work, a split that does not exist and outputs that cannot be
    written."""
    if split is not None and split not in SPLITS:
        raise ConfigError(f"--split: must be one of {', '.join(SPLITS)}, got {split!r}")
    if json_path is not None:
        if Path(json_path).is_dir():
            raise StorageError(f"{json_path}: is a directory; --json needs a file name")
        check_writable(Path(json_path).parent)
    if report_dir is not None:
        check_writable(report_dir)


def _run_record(ckpt) -> Path | None:
    """The run's ``eval.json`` when the checkpoint lives in a run directory (else None),
    read once now so that a damaged record fails before the work, not after it."""
    if not ckpt.recipe:
        raise CheckpointError(
            f"{ckpt.path}: records no recipe, so its data set is unknown; evaluate the training "
            "checkpoint it was exported from"
        )
    run_dir = ckpt.path.parent.parent
    if ckpt.path.parent.name != "checkpoints" or not (run_dir / "recipe.yaml").exists():
        return None
    record = run_dir / "eval.json"
    _read_json_list(record)
    return record


def _eval_data(ckpt, split: str, data_root: str | None, download: bool):
    """``(the split of the checkpoint's data set, its condition or None)``; a conditional
    model is scored given each image's class."""
    d = recipe_from_dict(ckpt.recipe, source=str(ckpt.path)).data
    opts = d.options()
    if download:
        opts["download"] = True
    data = load_split(d.name, split, root=data_root or d.root, **opts)
    condition = ckpt.condition()
    conditioning.label_data(condition, data)
    return data, condition


def _report_dict(split: str, res, ckpt, data, condition) -> dict:
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
    if condition is not None:  # the NLL is conditional: -log p(x | class)
        report["condition"] = condition.as_dict()
    if res.parts is not None:  # a model of parts (multiscale): each part's share
        report["parts"] = res.parts
    return report


def write_report(
    out: Path,
    report: dict,
    res: EvalResult,
    data,
    count: int = 8,
    *,
    written: list[Path] | None = None,
) -> dict[str, str]:
    """Write, into ``out``: ``heatmap.png`` (the mean NLL at each pixel position over the
    split), ``histogram.png`` (per-image NLL), ``most_likely.png`` and ``least_likely.png``
    (the ``count`` images of lowest and of highest NLL, in that order), and
    ``report.json`` (``report`` with those images' indices and NLLs and the per-position
    map). ``res`` comes from ``evaluate(details=True)``. Returns the files by role; each
    is also added to ``written`` as it is written, and all are removed if one fails."""
    with all_or_none([] if written is None else written) as done:
        return _write_report(out, report, res, data, count, done)


def _write_report(
    out: Path, report: dict, res: EvalResult, data, count: int, done: list[Path]
) -> dict[str, str]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(out, exc) from None
    nll = res.per_image  # (N,) nats
    order = torch.argsort(nll)
    picks = {"most_likely": order[:count], "least_likely": order.flip(0)[:count]}
    where = f"{report['split']} split, {res.num_images} images"
    name = report["model"]["name"]
    files = {k: out / f"{k}.png" for k in ("heatmap", "histogram", *picks)}
    plot_heatmap(
        res.per_position.numpy(), files["heatmap"], title=f"{name}: mean NLL per pixel ({where})"
    )
    done.append(files["heatmap"])
    plot_histogram(nll.numpy(), files["histogram"], title=f"{name}: NLL per image ({where})")
    done.append(files["histogram"])
    detail = dict(report)
    for key, idx in picks.items():
        images = torch.stack([data.image(int(i)) for i in idx])  # (count, C, H, W)
        scale = grid_scale(tuple(images.shape[-2:]))
        done.append(save_grid(images, data.levels, files[key], nrow=count, scale=scale))
        detail[key] = [{"index": int(i), "nll_nats": float(nll[i])} for i in idx]
    detail["per_position_nll_nats"] = res.per_position.tolist()
    files["json"] = out / "report.json"
    _write_json(files["json"], detail)
    done.append(files["json"])
    return {k: str(v) for k, v in files.items()}


def _read_json_list(path: Path) -> list:
    """The records of ``RUN/eval.json`` (none if there is no such file)."""
    if not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: unreadable ({first_line(exc)}); move it away, then eval again"
        ) from None
    if not isinstance(records, list):
        raise CheckpointError(f"{path}: not a list of eval records; move it away, then eval again")
    return records


def _write_json(path: Path, value) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(value, indent=2) + "\n").encode()))

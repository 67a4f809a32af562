"""Generation from a checkpoint, as the ``sample`` and ``complete`` commands run it (and
as Python code can): resolve the checkpoint, its image format and the recipe's sampling
defaults, generate, and write the PNGs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..checkpoint import Checkpoint
from ..conditioning import ConditionInfo, label_data, parse_class
from ..config import SampleConfig
from ..data import SPLITS, load_split
from ..devices import parse_device
from ..errors import CheckpointError, ConditionError, ConfigError, DataError, ImageError
from ..evaluate import check_compatible
from ..images import (
    check_writable,
    class_grid,
    completion_grid,
    grid_scale,
    grid_shape,
    load_image,
    occlusion_mask,
    save_grid,
    save_image,
)
from ..io import all_or_none
from . import complete, sample
from .driver import Progress


@dataclass
class Source:
    """A loaded checkpoint and what generation needs to know about it."""

    checkpoint: Checkpoint
    path: Path
    note: str | None  # what was chosen, when the argument did not name it outright
    size: tuple[int, int]  # (H, W) the model was trained on
    defaults: SampleConfig  # the recipe's ``sample`` section
    condition: ConditionInfo | None = None  # a conditional model's condition


@dataclass
class Samples:
    images: torch.Tensor  # (n, C, H, W)
    levels: int
    settings: dict[str, Any]
    files: list[Path] = field(default_factory=list)


@dataclass
class Completion:
    image: str | Path  # the input: its file, or "<split> <index>" for an image of the data set
    notes: list[str]
    completions: torch.Tensor  # (K, C, H, W)
    files: list[Path] = field(default_factory=list)
    label: str | None = None  # a class-conditional model: the class completed under
    own_label: bool = False  # that class is the image's true one (from the data set)


def open_checkpoint(spec: str | Path | None) -> Source:
    """Load what a CHECKPOINT argument names (see ``pixelgen.sources``): a file, a run
    directory or a shipped model; by default the newest run, else the best shipped model."""
    from ..sources import open_checkpoint as open_spec

    ckpt, note = open_spec(spec)
    size = ckpt.image_size(default=(28, 28))
    return Source(ckpt, Path(ckpt.path), note, size, ckpt.section("sample"), ckpt.condition())


def parse_size(text: str) -> tuple[int, int]:
    """``"28x28"`` (HxW) or ``"28"`` -> ``(28, 28)``."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not m or int(m[1]) < 1 or int(m[2] or m[1]) < 1:
        raise ConfigError(f"--size: expected HxW such as 28x28, got {text!r}")
    return int(m[1]), int(m[2] or m[1])


def _setting(value: Any, source: Source, key: str) -> Any:
    """The command line's value, else the recipe's ``sample`` section's (or its default)."""
    return value if value is not None else getattr(source.defaults, key)


def generate_samples(
    source: Source,
    *,
    n: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int | None = None,
    temperature: float | None = None,
    method: str | None = None,
    nrow: int | None = None,
    device: str = "auto",
    out: str | Path | None = "samples.png",
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    zoom: int | None = None,
    classes: str | int | None = None,
) -> Samples:
    """Sample a batch from ``source``; write a grid to ``out`` and, with ``out_dir``, each
    image as ``sample_<k>.png`` (at its own size). The grid enlarges each image ``zoom``
    times (default: ``grid_scale``, at least 112 pixels). Unset options come from the
    recipe's ``sample`` section.

    ``classes`` (a class-conditional model): a class by number or name draws ``n`` of
    it; ``"all"`` draws ``n`` of every class (default 8), a labelled grid with one row per
    class; None draws the classes in turn. On an unconditional model it is an error."""
    labels, n = _sample_classes(source, classes, n)
    settings = {
        "n": int(_setting(n, source, "n")) if labels is None else len(labels),
        "size": size or source.size,
        "seed": int(_setting(seed, source, "seed")),
        "temperature": float(_setting(temperature, source, "temperature")),
        "method": _setting(method, source, "method"),
        "nrow": _setting(nrow, source, "nrow"),
    }
    n_images = settings["n"]
    if classes == "all":  # one row per class
        settings["nrow"] = n_images // source.condition.classes
    ncol = settings["nrow"] or math.ceil(math.sqrt(n_images))
    settings["zoom"] = _zoom(zoom, settings["size"], n_images, ncol)
    if out is not None:  # checked before the sampling work, not after it
        check_writable(Path(out).parent)
    if out_dir is not None:
        check_writable(out_dir)
    model = source.checkpoint.build_model(parse_device(device))
    settings["device"] = str(next(model.parameters()).device)
    images = sample(
        model,
        settings["n"],
        settings["size"],
        generator=torch.Generator().manual_seed(settings["seed"]),
        temperature=settings["temperature"],
        method=settings["method"],
        progress=progress,
        cond=labels,
    ).cpu()
    if labels is not None:
        settings["classes"] = "all" if classes == "all" else labels.tolist()
    result = Samples(images, model.levels, settings)
    names = list(source.condition.names) if classes == "all" else None
    _write_samples(result, out, out_dir, names)
    return result


def _write_samples(result: Samples, out, out_dir, names: list[str] | None) -> None:
    """The grid (one labelled row per class where ``names`` are given) and each image,
    all written or none."""
    images, levels = result.images, result.levels
    scale = result.settings["zoom"]
    with all_or_none(result.files):
        if out is not None and names is not None:
            rows = images.view(len(names), -1, *images.shape[1:])  # (K, n, C, H, W)
            result.files.append(class_grid(rows, levels, names, out, scale=scale))
        elif out is not None:
            nrow = result.settings["nrow"]
            result.files.append(save_grid(images, levels, out, nrow=nrow, scale=scale))
        if out_dir is not None:
            digits = len(str(len(images)))
            for k, image in enumerate(images, 1):
                path = Path(out_dir) / f"sample_{k:0{digits}d}.png"
                result.files.append(save_image(image, levels, path))


def _sample_classes(source: Source, classes, n: int | None) -> tuple[torch.Tensor | None, int]:
    """``(labels (N,) or None, n)`` for ``generate_samples``' ``classes`` option."""
    info = source.condition
    if classes is None:
        if info is None:
            return None, n
        total = int(_setting(n, source, "n"))
        return torch.arange(total) % info.classes, total  # the classes in turn
    if str(classes).strip().lower() == "all":
        if info is None:
            parse_class("all", info)  # the error for an unconditional model
        per = 8 if n is None else n
        return torch.arange(info.classes).repeat_interleave(per), per
    label = parse_class(classes, info)
    total = int(_setting(n, source, "n"))
    return torch.full((total,), label), total


def _complete_class(source: Source, classes) -> torch.Tensor | None:
    """The label ``(1,)`` completions are drawn under, or None for an unconditional model.
    Image files carry no class, so a class-conditional model needs ``--class``."""
    label = _class_override(source, classes)
    if label is not None or source.condition is None:
        return label
    raise ConditionError(
        "--class: this model is class-conditional and image files carry no class; "
        f"give the class to complete under ({_class_choices(source.condition)}), or complete "
        "images of its data set with --split, which uses each image's own class"
    )


def _class_override(source: Source, classes) -> torch.Tensor | None:
    """``--class`` as a label ``(1,)``, None where it is not given; on an unconditional
    model it is an error."""
    return None if classes is None else torch.tensor([parse_class(classes, source.condition)])


def _class_choices(info: ConditionInfo) -> str:
    shown = ", ".join(info.names[:10]) + (", ..." if info.classes > 10 else "")
    return f"0..{info.classes - 1} or a name: {shown}"


@dataclass
class _Inputs:
    """What is completed: images converted to the model's format and what to call them."""

    x: torch.Tensor  # (N, C, H, W)
    names: list[str | Path]  # each input as the output line names it
    stems: list[str]  # each input's output file stem
    notes: list[list[str]]  # what was converted, per input
    labels: torch.Tensor | None = None  # (N,) or (1,): the classes completed under
    own: bool = False  # the labels are the images' true classes


def complete_images(
    source: Source,
    images: Sequence[str | Path],
    *,
    occlude: str,
    samples: int = 4,
    out_dir: str | Path = "completions",
    seed: int | None = None,
    temperature: float | None = None,
    method: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
    zoom: int | None = None,
    classes: str | int | None = None,
) -> list[Completion]:
    """Complete every image ``samples`` times with the part ``occlude`` names hidden.

    Images are converted to the model's format (``note`` hears what was converted). All
    completions run as one batch. Writes ``<stem>_grid.png`` (a caption row, then original
    | occluded view | completions, each enlarged ``zoom`` times, by default ``grid_scale``)
    and ``<stem>_<k>.png`` per completion (at its own size) into ``out_dir``.
    ``classes``: the class to complete under, for a class-conditional model (needed: image
    files carry no class); on an unconditional model it is an error.
    """
    label = _complete_class(source, classes)
    if not images:
        raise ImageError(
            "no images given: pass one or more image files to complete, or --split to "
            "complete images of the checkpoint's data set"
        )
    plan = _plan(source, occlude, samples, out_dir, seed, zoom)
    model = source.checkpoint.build_model(parse_device(device))
    inputs, all_notes = [], []
    for path in images:
        image, notes = load_image(
            path, channels=model.channels, levels=model.levels, size=source.size
        )
        for line in notes if note is not None else ():
            note(f"{path}: {line}")
        inputs.append(image)
        all_notes.append(notes)
    names = [Path(p) for p in images]
    given = _Inputs(torch.stack(inputs), names, _unique_stems(images), all_notes, label)
    return _complete(source, model, given, plan, temperature, method, progress)


def complete_split(
    source: Source,
    split: str,
    *,
    start: int = 0,
    count: int = 8,
    data_root: str | None = None,
    download: bool = False,
    occlude: str,
    samples: int = 4,
    out_dir: str | Path = "completions",
    seed: int | None = None,
    temperature: float | None = None,
    method: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    note: Callable[[str], None] | None = None,
    zoom: int | None = None,
    classes: str | int | None = None,
) -> list[Completion]:
    """Complete images ``start .. start + count - 1`` of ``split`` of the checkpoint's own
    data set (as its recipe reads it; ``data_root`` and ``download`` as for ``eval``),
    writing ``<split>_<index>_grid.png`` and ``<split>_<index>_<k>.png`` as
    :func:`complete_images` does. A class-conditional model completes each image under
    its true class; ``classes`` overrides that for all of them."""
    override = _class_override(source, classes)
    if start < 0 or count < 1:
        raise ConfigError(f"--start must be >= 0 and --max-images >= 1, got {start} and {count}")
    plan = _plan(source, occlude, samples, out_dir, seed, zoom)
    data = _open_split(source, split, data_root, download)
    rows = range(start, min(start + count, len(data)))
    if not rows:
        raise DataError(f"--start {start}: {data.name} {split} has only {len(data)} images")
    model = source.checkpoint.build_model(parse_device(device))
    check_compatible(model, data)
    given = _split_inputs(source, data, rows, override)
    if note is not None:  # once every check has passed: an error stays one line
        note(f"images {rows.start}..{rows.stop - 1} of {data.description}")
    return _complete(source, model, given, plan, temperature, method, progress)


def _open_split(source: Source, split: str, root: str | None, download: bool):
    """``split`` of the data set the checkpoint's recipe trained on."""
    if split not in SPLITS:
        raise ConfigError(f"--split: must be one of {', '.join(SPLITS)}, got {split!r}")
    ckpt = source.checkpoint
    if not isinstance(ckpt.recipe, dict) or not isinstance(ckpt.recipe.get("data"), dict):
        raise CheckpointError(
            f"{ckpt.path}: records no data set (its recipe's data section), so --split has "
            "nothing to read; complete image files, or use the training checkpoint"
        )
    d = ckpt.section("data")
    opts = d.options() | ({"download": True} if download else {})
    data = load_split(d.name, split, root=root or d.root, **opts)
    if (data.height, data.width) != source.size:
        raise DataError(
            f"{data.name} {split} has {data.height}x{data.width} images but the model was "
            f"trained on {source.size[0]}x{source.size[1]}: {data.description}"
        )
    return data


def _split_inputs(source: Source, data, rows: range, override) -> _Inputs:
    """Images ``rows`` of ``data`` and the classes they are completed under: ``override``
    (``--class``) where given, else, for a class-conditional model, their own."""
    info = source.condition
    if override is None and info is not None:
        if data.labels is None:
            raise ConditionError(
                f"--class: this model is class-conditional and {data.name} {data.split} has no "
                f"labels; give the class to complete under ({_class_choices(info)})"
            )
        label_data(info, data)  # the set's classes must be the model's
    x, own = data.batch(rows)  # (N, C, H, W) uint8; (N,) where the set is labelled, else None
    names = [f"{data.split} {i}" for i in rows]
    stems = [f"{data.split}_{i:05d}" for i in rows]
    notes = [[] for _ in rows]
    if override is not None or own is None:
        return _Inputs(x.long(), names, stems, notes, override)
    return _Inputs(x.long(), names, stems, notes, own, own=True)


@dataclass
class _Plan:
    seed: int
    samples: int
    scale: int  # the grids' zoom
    hidden: torch.Tensor  # (H, W) bool
    out_dir: Path


def _plan(source: Source, occlude: str, samples: int, out_dir, seed, zoom) -> _Plan:
    """A completion's options, checked (the output folder too) before any work."""
    if samples < 1:
        raise ConfigError(f"--samples: must be >= 1, got {samples}")
    check_writable(out_dir)
    seed = int(_setting(seed, source, "seed"))
    scale = _zoom(zoom, source.size, samples + 2, samples + 2)
    hidden = occlusion_mask(occlude, source.size, seed=seed)  # (H, W)
    return _Plan(seed, samples, scale, hidden, Path(out_dir))


def _complete(source, model, given: _Inputs, plan: _Plan, temperature, method, progress):
    """Complete ``given`` as one batch, write its grids and images, all or none."""
    k = plan.samples
    x = given.x.repeat_interleave(k, 0)  # (N*K, C, H, W)
    labels = given.labels
    if labels is not None and len(labels) > 1:  # one class per image: one per completion
        labels = labels.repeat_interleave(k, 0)  # (N*K,)
    filled = complete(
        model,
        x,
        ~plan.hidden,
        generator=torch.Generator().manual_seed(plan.seed),
        temperature=float(_setting(temperature, source, "temperature")),
        method=_setting(method, source, "method"),
        progress=progress,
        cond=labels,
    ).cpu()
    filled = filled.view(len(given.x), k, *filled.shape[1:])  # (N, K, C, H, W)
    levels, results = model.levels, []
    with all_or_none([]) as written:
        for n, stem in enumerate(given.stems):
            first = len(written)
            grid = plan.out_dir / f"{stem}_grid.png"
            written.append(
                completion_grid(given.x[n], plan.hidden, filled[n], levels, grid, scale=plan.scale)
            )
            for s, image in enumerate(filled[n], 1):
                written.append(save_image(image, levels, plan.out_dir / f"{stem}_{s}.png"))
            result = Completion(given.names[n], given.notes[n], filled[n], written[first:])
            if given.labels is not None:
                label = int(given.labels[n if len(given.labels) > 1 else 0])
                result.label, result.own_label = source.condition.names[label], given.own
            results.append(result)
    return results


def _zoom(zoom: int | None, size: tuple[int, int], n: int, ncol: int) -> int:
    """``--zoom`` (default ``grid_scale(size)``), refused before the work where it is not a
    whole number >= 1 or would make a grid of ``n`` images over Pillow's size limit."""
    if zoom is None:
        return grid_scale(size)
    if isinstance(zoom, bool) or not isinstance(zoom, int) or zoom < 1:
        raise ConfigError(f"--zoom: must be a whole number >= 1, got {zoom!r}")
    h, w = grid_shape(n, ncol, size, zoom)
    if h * w > Image.MAX_IMAGE_PIXELS:
        raise ConfigError(
            f"--zoom {zoom}: the grid would be {w:,}x{h:,} pixels, over Pillow's limit of "
            f"{Image.MAX_IMAGE_PIXELS:,}; choose a smaller --zoom"
        )
    return zoom


def _unique_stems(paths: Sequence[str | Path]) -> list[str]:
    """File stems, numbered where two inputs share one (``a/x.png``, ``b/x.png``)."""
    stems, seen = [], {}
    for p in paths:
        stem = Path(p).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems

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
from ..conditioning import ConditionInfo, parse_class
from ..config import SampleConfig
from ..devices import parse_device
from ..errors import ConditionError, ConfigError, ImageError
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
    image: Path
    notes: list[str]
    completions: torch.Tensor  # (K, C, H, W)
    files: list[Path] = field(default_factory=list)


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
    levels, scale = model.levels, settings["zoom"]
    with all_or_none(result.files):
        if out is not None and classes == "all":
            names = list(source.condition.names)
            rows = images.view(len(names), -1, *images.shape[1:])  # (K, n, C, H, W)
            result.files.append(class_grid(rows, levels, names, out, scale=scale))
        elif out is not None:
            result.files.append(save_grid(images, levels, out, nrow=settings["nrow"], scale=scale))
        if out_dir is not None:
            digits = len(str(len(images)))
            for k, image in enumerate(images, 1):
                path = Path(out_dir) / f"sample_{k:0{digits}d}.png"
                result.files.append(save_image(image, levels, path))
    return result


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
    info = source.condition
    if classes is not None:
        return torch.tensor([parse_class(classes, info)])
    if info is None:
        return None
    shown = ", ".join(info.names[:10]) + (", ..." if info.classes > 10 else "")
    raise ConditionError(
        "--class: this model is class-conditional and image files carry no class; "
        f"give the class to complete under (0..{info.classes - 1} or a name: {shown})"
    )


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
    if samples < 1:
        raise ConfigError(f"--samples: must be >= 1, got {samples}")
    if not images:
        raise ImageError("no images given: pass one or more image files to complete")
    check_writable(out_dir)  # before the work, not after it
    seed = int(_setting(seed, source, "seed"))
    size = source.size
    scale = _zoom(zoom, size, samples + 2, samples + 2)
    hidden = occlusion_mask(occlude, size, seed=seed)  # (H, W)
    model = source.checkpoint.build_model(parse_device(device))
    inputs, all_notes = [], []
    for path in images:
        image, notes = load_image(path, channels=model.channels, levels=model.levels, size=size)
        for line in notes if note is not None else ():
            note(f"{path}: {line}")
        inputs.append(image)
        all_notes.append(notes)
    x = torch.stack(inputs).repeat_interleave(samples, 0)  # (N*K, C, H, W)
    filled = complete(
        model,
        x,
        ~hidden,
        generator=torch.Generator().manual_seed(seed),
        temperature=float(_setting(temperature, source, "temperature")),
        method=_setting(method, source, "method"),
        progress=progress,
        cond=label,
    ).cpu()
    filled = filled.view(len(inputs), samples, *filled.shape[1:])  # (N, K, C, H, W)
    out_dir, levels, results = Path(out_dir), model.levels, []
    with all_or_none([]) as written:
        for k, stem in enumerate(_unique_stems(images)):
            first = len(written)
            grid = out_dir / f"{stem}_grid.png"
            written.append(completion_grid(inputs[k], hidden, filled[k], levels, grid, scale=scale))
            for s, image in enumerate(filled[k], 1):
                written.append(save_image(image, levels, out_dir / f"{stem}_{s}.png"))
            results.append(Completion(Path(images[k]), all_notes[k], filled[k], written[first:]))
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

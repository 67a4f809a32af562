"""The data set catalog: `load_split(name, split, root=..., **options)` and
`list_datasets()`. Validates the name, split and options (ConfigError, with
did-you-mean) before any loader touches the disk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, DataNotFoundError
from ..text import did_you_mean
from . import cifar10, folder, imagenet, mnist
from .base import SPLITS, ImageSet
from .download import download as fetch
from .options import Option


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    options: tuple[Option, ...]
    # open(split, root, options) -> ImageSet; options are checked and defaults filled in.
    open: Callable[[str, str | None, dict[str, Any]], ImageSet]


def _specs() -> dict[str, DatasetSpec]:
    specs = {}
    for module in (mnist, cifar10, imagenet, folder):
        for name, (description, options, opener) in module.DATASETS.items():
            specs[name] = DatasetSpec(name, description, tuple(options), opener)
    return specs


_SPECS = _specs()


def list_datasets() -> list[tuple[str, str]]:
    """(name, one-line description) of every data set, in catalog order."""
    return [(s.name, s.description) for s in _SPECS.values()]


def _spec(name: str) -> DatasetSpec:
    if not isinstance(name, str):
        raise ConfigError(f"data.name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key in _SPECS:
        return _SPECS[key]
    hint = did_you_mean(key, _SPECS)
    raise ConfigError(f"unknown data set {name!r}{hint}; valid names: {', '.join(_SPECS)}")


def _check_split(split: str) -> str:
    if split in SPLITS:
        return split
    hint = did_you_mean(str(split), SPLITS, cutoff=0.5)
    raise ConfigError(f"unknown split {split!r}{hint}; valid splits: {', '.join(SPLITS)}")


def _check_options(spec: DatasetSpec, given: dict[str, Any]) -> dict[str, Any]:
    known = {o.name: o for o in spec.options}
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key in known:
            continue
        users = [s.name for s in _SPECS.values() if any(o.name == key for o in s.options)]
        if users and value is None:
            continue  # an unset option of another data set: absent, as documented
        if users:
            who = ", ".join(repr(u) for u in users)
            noun = "data set" if len(users) == 1 else "data sets"
            raise ConfigError(
                f"data.{key} is only used by {noun} {who}, not by {spec.name!r}; remove it"
            )
        every = sorted({o.name for s in _SPECS.values() for o in s.options})
        hint = did_you_mean(key, every)
        mine = ", ".join(known) or "none"
        raise ConfigError(f"unknown data option {key!r}{hint}; options of {spec.name!r}: {mine}")
    for opt in spec.options:
        value = given.get(opt.name)
        out[opt.name] = opt.default if value is None else opt.check(value)
    return out


def load_split(
    name: str, split: str, *, root: str | None = None, download: bool | None = False, **options: Any
) -> ImageSet:
    """Open one split ("train", "valid" or "test") of a data set.

    `root` is searched first (see `pixelgen.data.locate`); `options` are the
    data set's own settings (valid_size, binarize, image_size, ...), None meaning
    the default. Raises ConfigError for a bad name/split/option and DataError when
    the files are missing or unreadable. With ``download``, files that are not found are
    fetched from where they are published (``pixelgen.data.download``) into ``root``
    or the cache, then read."""
    spec = _spec(name)
    split = _check_split(split)
    if root is not None and not isinstance(root, (str, bytes)) and not hasattr(root, "__fspath__"):
        raise ConfigError(f"data.root must be a path, got {root!r}")
    opts = _check_options(spec, options)
    root = None if root is None else str(root)
    try:
        return spec.open(split, root, opts)
    except DataNotFoundError:
        if not download:
            raise
    fetch(_download_name(spec.name, opts), root=root)
    return spec.open(split, root, opts)


def _download_name(name: str, opts: dict[str, Any]) -> str:
    # The standard binarized MNIST has files of its own; the drawn ones are read from MNIST.
    return "binarized_mnist" if opts.get("binarize") == "standard" else name

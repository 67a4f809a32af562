"""The pretrained models shipped inside the package.

Each ``<name>.safetensors`` beside this file is a pixelgen safetensors export (weights with
the masks folded in, ``weights_sha256`` verified on every load, the resolved recipe) whose
metadata also holds what the model reached and how (``results``: test NLL
with its standard error over the full test set and over its first 1,000 images, steps,
images seen, training time, machine, date). A pip-installed pixelgen has them offline, as
it has the MNIST files. :func:`write_pretrained` makes one from a training run
(``scripts/ship_pretrained.py``); :func:`shipped` lists them; ``pixelgen.sources`` lets
every command take one by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

FOLDER = Path(__file__).resolve().parent
SUFFIX = ".safetensors"


@dataclass(frozen=True)
class Pretrained:
    """One shipped model, as its file's metadata describes it (weights not read)."""

    name: str
    path: Path
    model_name: str
    hparams: dict[str, Any]
    data: dict[str, Any]
    results: dict[str, Any]

    @property
    def test_nll(self) -> float:
        return float(self.results["test_nll_nats"])

    @property
    def parameters(self) -> int:
        return int(self.results.get("parameters", 0))

    def summary(self) -> str:
        r = self.results
        return f"{r['test_nll_nats']:.2f} ± {r['test_nll_nats_stderr']:.2f} nats on the test set"


def names() -> list[str]:
    """The shipped models' names, sorted."""
    return [p.name.removesuffix(SUFFIX) for p in _files()]


def shipped() -> list[Pretrained]:
    """Every shipped model, sorted by name."""
    return [_describe(p) for p in _files()]


def find(name: str) -> Pretrained | None:
    """The shipped model called ``name``, or None."""
    return _describe(FOLDER / f"{name}{SUFFIX}") if name in names() else None


def best() -> Pretrained | None:
    """The shipped model with the lowest test NLL (they share one data set), or None."""
    models = shipped()
    return min(models, key=lambda m: m.test_nll) if models else None


def _files() -> list[Path]:
    return sorted(FOLDER.glob(f"*{SUFFIX}"))


def _describe(path: Path) -> Pretrained:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
        return Pretrained(
            name=path.name.removesuffix(SUFFIX),
            path=path,
            model_name=meta["model_name"],
            hparams=json.loads(meta["hparams"]),
            data=json.loads(meta.get("data", "{}")),
            results=json.loads(meta["results"]),
        )
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: damaged shipped model ({type(exc).__name__}: {exc}); reinstall pixelgen"
        ) from None


def write_pretrained(model, ckpt, out: Path, *, results: dict[str, Any]) -> None:
    """Write ``model`` (built from the training checkpoint ``ckpt``) as a shipped model:
    a safetensors export that also carries the recipe and ``results``."""
    from ..export.safetensors_io import write_safetensors

    extra = {"results": json.dumps(results, sort_keys=True)}
    height, width = ckpt.data["height"], ckpt.data["width"]
    write_safetensors(model, ckpt, Path(out), height=height, width=width, extra=extra)

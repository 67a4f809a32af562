"""The round trip that proves an export: the same images through the checkpoint's model
and through the file loaded back, compared logit by logit.

The images are the first test images of the data set the checkpoint was trained on
(its recipe's ``data`` section), so the check runs where the model is used; when that data
set cannot be read, valid random images of the right shape stand in, and the report says so.
"""

from __future__ import annotations

from typing import Any

import torch

from ..checkpoint import Checkpoint
from ..errors import PixelgenError
from ..text import first_line


def dataset_images(
    ckpt: Checkpoint, model: torch.nn.Module, n: int
) -> tuple[torch.Tensor | None, str]:
    """Up to ``n`` test images ``(n, C, H, W)`` int64 of the checkpoint's data set, and
    where they came from; ``(None, why not)`` when they cannot be had or do not fit."""
    if not ckpt.recipe:
        return None, "the checkpoint has no recipe"
    from ..config import recipe_from_dict
    from ..data import load_split

    try:
        data = recipe_from_dict(ckpt.recipe, source=f"{ckpt.path} (recipe)").data
        images = load_split(data.name, "test", root=data.root, **data.options())
        found = (images.channels, images.levels)
        if found != (model.channels, model.levels):
            return None, (
                f"test split of {data.name} has {found[0]} channels and {found[1]} levels, "
                f"the model {model.channels} and {model.levels}"
            )
        size = ckpt.image_size()
        if size is not None and (images.height, images.width) != size:
            return None, (
                f"test split of {data.name} holds {images.height}x{images.width} images, "
                f"the checkpoint was trained on {size[0]}x{size[1]}"
            )
        count = min(n, len(images))
        if count == 0:
            return None, f"test split of {data.name} is empty"
        batch = torch.stack([images[i] for i in range(count)]).long()  # (n, C, H, W)
    except (PixelgenError, OSError) as exc:
        return None, first_line(exc)
    return batch, f"test split of {data.name}"


def example_classes(model: torch.nn.Module, n: int) -> torch.Tensor | None:
    """A class-conditional model's condition for ``n`` checked images: the classes in turn
    ``(n,)`` int64 (every class is as valid a check as another); None when unconditional."""
    classes = int(getattr(model, "cond_channels", 0) or 0)
    return torch.arange(n) % classes if classes else None


def random_images(model: torch.nn.Module, n: int, height: int, width: int) -> torch.Tensor:
    """``(n, C, H, W)`` int64 images uniform over the model's levels, the same every call."""
    generator = torch.Generator().manual_seed(1234)
    return torch.randint(0, model.levels, (n, model.channels, height, width), generator=generator)


def max_abs_diff(
    reference: torch.nn.Module,
    program: Any,
    images: torch.Tensor,
    classes: torch.Tensor | None = None,
) -> float:
    """Largest ``|logit difference|`` over ``images`` and, separately, its first image (a
    batch size other than the one traced: a program with the batch baked in fails here);
    a conditional model's ``classes`` ``(B,)`` go to both as the second input.
    ``inf`` for a shape mismatch or a non-finite logit."""
    worst = 0.0
    with torch.no_grad():
        for k in (len(images), 1):
            x = images[:k]
            args = (x,) if classes is None else (x, classes[:k])
            want = reference(*args)  # (B, L, C, H, W)
            got = torch.as_tensor(program(*args)).to(want.dtype)
            if got.shape != want.shape or not bool(torch.isfinite(got).all()):
                return float("inf")
            worst = max(worst, float((got - want).abs().max()))
    return worst

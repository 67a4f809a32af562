"""Generation from the Multi-Scale PixelRNN (§3.5): the small image first, then the full
image given it, both exact, with each stage's own sampler (fast or naive).

The model's order is the grid pixels ``x[..., ::r, ::r]`` (in the small image's raster
order), then every other pixel in raster order (``models/multiscale.py``). Stage one
completes the small image with the small model: its known pixels are the known grid
pixels (none when sampling). Stage two is a completion of the full image with the large
model, conditioned on the upsampled small image, whose known values are the caller's and
the whole grid: the fast completion machinery of ``driver.py`` unchanged. Each drawn
value is therefore drawn from its exact conditional given every value before it in the
model's order, known or drawn, as in a raster-order completion; what comes later in
that order does not inform it. In particular a known pixel off the grid does not inform
the grid pixels drawn in stage one (that would need p(grid | known pixels), which no
forward pass gives), only the values after it in raster order.

The uniforms of stage one are drawn from ``generator`` before those of stage two, so
``fast`` and ``naive`` give the same images for the same seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..errors import ConditionError
from .staged import register_staged

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.multiscale import MultiScalePixelRNN


@register_staged("pixelgen.models.multiscale.MultiScalePixelRNN")
def generate_multiscale(
    model: MultiScalePixelRNN,
    x: torch.Tensor,
    known: torch.Tensor,
    *,
    generate,
    cond=None,
    progress=None,
    on_logits=None,
    **kw,
) -> torch.Tensor:
    """Fill the unknown values of ``x`` ``(B, C, H, W)`` (``known``: bool, as ``x``).
    ``generate`` is the driver's (for each stage); ``on_logits`` hears the grid's steps at
    their coordinates in the full image; ``progress`` counts the rows of both stages."""
    if cond is not None:
        raise ConditionError("the multiscale model takes no condition: it makes its own")
    r, (height, width) = model.factor, x.shape[-2:]
    sub, sub_known = model.subsample(x), model.subsample(known)  # (B, C, s, s)
    rows = sub.shape[-2] + height
    small = generate(
        model.small,
        sub.clone(),
        sub_known,
        progress=None if progress is None else lambda i, _: progress(i, rows),
        on_logits=None if on_logits is None else lambda i, j, c, v: on_logits(r * i, r * j, c, v),
        **kw,
    )  # (B, C, s, s)
    full = x.clone()
    full[..., ::r, ::r] = small
    with torch.no_grad():
        cond_map = model.condition(small, (height, width))  # (B, c, H, W)
    grid = model.grid(height, width, x.device)  # (H, W)
    on_grid = grid.cpu().tolist()
    done = rows - height

    def large_logits(i: int, j: int, c: int, logits: torch.Tensor) -> None:
        # A stateful stepper also visits the known grid pixels; those logits are not used.
        if not on_grid[i][j]:
            on_logits(i, j, c, logits)

    return generate(
        model.large,
        full,
        known | grid,
        cond=cond_map,
        progress=None if progress is None else lambda i, _: progress(done + i, rows),
        on_logits=None if on_logits is None else large_logits,
        **kw,
    )

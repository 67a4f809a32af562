"""Multi-Scale PixelRNN (§3.5): an unconditional model of a small s x s image, and a
conditional model of the n x n image given it, the small image reaching every layer of the
second through an upsampling network's c x n x n map (``nn/condition.py``).

The small image is the **strided subsample** of the full one, ``x[..., ::r, ::r]`` with
``r = factor = n / s``: the top-left pixel of every r x r block (offset 0, so that the grid
includes pixel (0, 0) and any image size works, the last block possibly cut). Its pixels
are pixels of the full image, so the model is exactly normalized:

    log p(x) = log p_small(x[::r, ::r]) + sum over pixels k off the grid of
               log p_large(x_k | x_<k, x[::r, ::r])

The large network is never scored on a grid pixel: every colour of it is known from the
small image. ``forward`` returns that as one logit tensor: the small model's logits on the
grid, the large model's elsewhere, so ``cross_entropy(model(x), x)`` is ``-log p(x)`` and
training, evaluation and export use the contract of ``models/base.py`` unchanged. The
values' order is not raster order, though: the grid pixels come first (in the small image's
raster order), then the others in raster order. A composite model, it is therefore not in
``list_models()`` (``registry``), whose generic tests assume raster order; its own tests
are in ``tests/test_multiscale.py``. Generation runs the two stages in turn
(``sampling/multiscale.py``).

The paper does not say how it subsamples, and reports the two stages' likelihood; the
subsample that is a subset of the pixels and the large model's loss restricted to the
other pixels are what make the total exact here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConditionError
from ..registry import ModelSpec, create_model, register_model


class Upsampler(nn.Module):
    """The small image's encoder (§3.5, "a convolutional network with upsampling"): a 3x3
    convolution at s x s, a transposed convolution of kernel and stride ``factor`` (each
    small pixel spreads over its r x r block), a 3x3 convolution at n x n; ReLUs between.
    ``(B, C, s, s)`` scaled image -> ``(B, maps, n, n)``. Unmasked: every value of the
    small image is known before the large image starts."""

    def __init__(self, *, channels: int, hidden: int, maps: int, factor: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.up = nn.ConvTranspose2d(hidden, hidden, factor, stride=factor)
        self.out = nn.Conv2d(hidden, maps, 3, padding=1)

    def forward(self, small: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = F.relu(self.up(F.relu(self.inp(small))))  # (B, hidden, s*r, s*r)
        # s = ceil(n / r), so s*r >= n; the cut keeps the map aligned with the grid.
        return self.out(y[..., : size[0], : size[1]])  # (B, maps, H, W)


class MultiScalePixelRNN(nn.Module):
    """Multi-Scale PixelRNN: small model at s x s, conditional large model at n x n (§3.5).

    ``factor`` is r = n / s; ``small`` and ``large`` are the two parts, each a registered
    single model's name and hyperparameters (``registry.ModelSpec``; their channels and
    levels are the data's). The large part is built conditional on ``condition_maps`` (c)
    maps, which the upsampling network of width ``upsample_hidden`` makes from the small
    image. ``cond_channels`` (what ``model.condition`` sets) must stay 0: the model takes no
    outside condition."""

    composite = True  # built from other registered models (``registry``)

    def __init__(
        self,
        *,
        channels: int = 1,
        levels: int = 256,
        factor: int = 2,
        small: ModelSpec,
        large: ModelSpec,
        condition_maps: int = 16,
        upsample_hidden: int = 32,
        cond_channels: int = 0,
    ) -> None:
        super().__init__()
        if cond_channels:  # the one outside condition there is: model.condition (a class)
            raise ConditionError(
                "model.condition: the multiscale model takes no outside condition (its large "
                "part is conditioned on the small image); a class-conditional multi-scale model "
                "is not supported"
            )
        self.channels, self.levels, self.factor = channels, levels, factor
        self.cond_channels = 0  # takes no condition from outside: its own is the small image
        fmt = dict(channels=channels, levels=levels)
        small_hp = {k: v for k, v in small.items() if k != "name"}
        large_hp = {k: v for k, v in large.items() if k != "name"}
        self.small = create_model(small["name"], **fmt, **small_hp)
        self.large = create_model(large["name"], **fmt, cond_channels=condition_maps, **large_hp)
        self.upsample = Upsampler(
            channels=channels, hidden=upsample_hidden, maps=condition_maps, factor=factor
        )

    def subsample(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, s, s)
        return x[..., :: self.factor, :: self.factor]

    def grid(self, height: int, width: int, device=None) -> torch.Tensor:
        """``(H, W)`` bool: the pixels of the small image."""
        rows = torch.arange(height, device=device) % self.factor == 0
        cols = torch.arange(width, device=device) % self.factor == 0
        return rows[:, None] & cols[None, :]

    def parts(self, height: int, width: int) -> dict[str, torch.Tensor]:
        """``{part: (H, W) bool}``: which pixels each part scores (the eval report)."""
        grid = self.grid(height, width)
        return {"small": grid, "large": ~grid}

    def condition(self, small: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The large model's condition ``(B, c, H, W)`` from the integer small image."""
        return self.upsample(self.small.scale(small), size)

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """``(B, C, H, W) -> (B, L, C, H, W)``: the small model's logits on the grid, the
        large model's (given the small image) elsewhere; see the module docstring."""
        if cond is not None:
            raise ConditionError("the multiscale model takes no condition: it makes its own")
        h, w = x.shape[-2:]
        sub = self.subsample(x)  # (B, C, s, s)
        large = self.large(x, self.condition(sub, (h, w)))  # (B, L, C, H, W)
        r = self.factor
        small = self.small(sub)  # (B, L, C, s, s)
        # Each small logit repeated over its r x r block, then kept on the grid only.
        spread = small.repeat_interleave(r, dim=-2).repeat_interleave(r, dim=-1)
        return torch.where(self.grid(h, w, x.device), spread[..., :h, :w], large)

    def log_prob(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """``(B,)`` exact log-likelihood in nats: small part plus the large part off the grid."""
        nll = F.cross_entropy(self(x, cond), x.long(), reduction="none")  # (B, C, H, W)
        return -nll.flatten(1).sum(1)

    def sample(self, n: int, size: tuple[int, int] = (28, 28), **kw) -> torch.Tensor:
        """``n`` images: the small image first, then the rest given it (``pixelgen.sampling``)."""
        from ..sampling import sample

        return sample(self, n, size, **kw)

    def complete(self, x: torch.Tensor, known: torch.Tensor, **kw) -> torch.Tensor:
        """Fill the values of ``x`` not marked ``known``: the grid first, then the rest."""
        from ..sampling import complete

        return complete(self, x, known, **kw)


@register_model
def multiscale(**kwargs) -> MultiScalePixelRNN:
    """Multi-Scale PixelRNN (§3.5): small model at n/factor, conditional large model at n."""
    return MultiScalePixelRNN(**kwargs)

"""What every pixelgen model shares (§3, Table 1 of the paper).

A 7x7 mask-A convolution turns the scaled image into ``2h`` feature maps; a body
(model-specific) transforms them; two ReLU + 1x1 mask-B layers produce one softmax over
``levels`` values per colour. The contract the rest of the project relies on:

* ``model(x)``: ``x`` is an integer tensor ``(B, C, H, W)`` with values in ``[0, levels)``;
  the result is logits ``(B, levels, C, H, W)``, so ``F.cross_entropy(logits, x)`` is the
  NLL. No image size is baked into the weights.
* ``model.log_prob(x)``: ``(B,)`` log-likelihood in nats, summed over all values.
* Input scaling (to ``[-1, 1]``) happens inside the model.
* A model built with ``cond_channels=c > 0`` is conditional (§3.5, ``nn/condition.py``):
  ``model(x, cond)`` and ``model.log_prob(x, cond)`` take class labels ``(B,)`` or a map
  ``(B, c, H or 1, W or 1)``; with ``cond_channels=0`` (the default) nothing changes, not
  even the parameter names.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConditionError, ConfigError
from ..nn.condition import Condition, as_map
from ..nn.masked import MaskedConv2d
from ..nn.masks import channel_groups


class OutputHead(nn.Module):
    """ReLU, 1x1 mask B, ReLU, 1x1 mask B: ``(B, F, H, W) -> (B, levels, C, H, W)`` logits."""

    def __init__(self, *, features: int, out_hidden: int, levels: int, colours: int) -> None:
        super().__init__()
        self.levels, self.colours = levels, colours
        groups = channel_groups(features, colours)
        hidden_groups = channel_groups(out_hidden, colours)
        # Output map c * levels + v is the logit of value v for colour c.
        out_groups = torch.arange(colours).repeat_interleave(levels)
        self.hidden = MaskedConv2d(
            features, out_hidden, 1, mask_type="B", in_groups=groups, out_groups=hidden_groups
        )
        self.out = MaskedConv2d(
            out_hidden,
            colours * levels,
            1,
            mask_type="B",
            in_groups=hidden_groups,
            out_groups=out_groups,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(F.relu(self.hidden(F.relu(x))))  # (B, C*levels, H, W)
        b, _, h, w = y.shape
        return y.view(b, self.colours, self.levels, h, w).transpose(1, 2)


class PixelModel(nn.Module):
    """Base class: input layer, ``body`` (subclasses), output head, and the contract above.

    The hyperparameters every model shares are declared here, once; each model class
    declares its own in its ``__init__`` and forwards the rest (``**common``). The registry
    and the recipe schema read names, types and defaults from these declarations, and
    ``registry.create_model`` checks every value against them and their ranges
    (``registry.hparams_schema``), as recipes are; the constructors only check what depends
    on the data (enough feature maps per colour)."""

    def __init__(
        self,
        *,
        channels: int = 1,
        levels: int = 256,
        hidden: int = 16,
        out_hidden: int | None = None,
        input_kernel: int = 7,
        cond_channels: int = 0,
    ) -> None:
        super().__init__()
        _check(hidden >= channels, "model.hidden", f"must be >= channels ({channels})")
        out_hidden = 2 * hidden if out_hidden is None else out_hidden
        _check(out_hidden >= channels, "model.out_hidden", f"must be >= channels ({channels})")
        self.channels, self.levels, self.hidden = channels, levels, hidden
        self.features = 2 * hidden
        self.cond_channels = cond_channels
        # Made by ``add_condition`` at the end of each model's __init__: created last, so
        # that the other parameters are drawn as in the unconditional model.
        self.condition: Condition | None = None
        self.input_conv = MaskedConv2d(
            channels,
            self.features,
            input_kernel,
            mask_type="A",
            in_groups=torch.arange(channels),
            out_groups=self.groups(self.features),
        )
        self.head = OutputHead(
            features=self.features, out_hidden=out_hidden, levels=levels, colours=channels
        )

    def groups(self, n: int) -> torch.Tensor:
        return channel_groups(n, self.channels)

    def add_condition(self, widths: list[int]) -> None:
        """Each model's last step of ``__init__``: the 1x1 condition maps of its layers'
        gate terms (``widths``, in the order the model reads them), if it is conditional."""
        if self.cond_channels:
            self.condition = Condition(channels=self.cond_channels, widths=widths)

    def cond_map(self, cond, x: torch.Tensor) -> torch.Tensor | None:
        """The prepared condition ``(B, c, H or 1, W or 1)`` for images ``x``, or None for
        an unconditional model; a condition missing or given where it does not belong is a
        one-line ``ConditionError``."""
        if self.condition is None:
            if cond is not None:
                raise ConditionError("this model is unconditional: it takes no condition")
            return None
        if cond is None:
            raise ConditionError(
                f"this model is conditional ({self.cond_channels} condition channels): "
                "give a class or a condition map"
            )
        b, _, h, w = x.shape
        dtype = self.input_conv.weight.dtype
        return as_map(cond, channels=self.cond_channels, batch=b, size=(h, w), dtype=dtype)

    def cond_terms(self, cond_map: torch.Tensor | None) -> list[torch.Tensor] | None:
        """Every layer term ``[(B, width, H or 1, W or 1)]`` of a prepared map, or None."""
        return None if cond_map is None else self.condition.terms(cond_map)

    def body(self, features: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 2h, H, W) -> (B, 2h, H, W)``; ``cond``: the prepared map or None."""
        raise NotImplementedError

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels -> floats in ``[-1, 1]`` in the parameters' dtype."""
        dtype = self.input_conv.weight.dtype
        return x.to(dtype) * (2.0 / (self.levels - 1)) - 1.0

    def forward_scaled(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """Logits from an already scaled float image ``(B, C, H, W)``."""
        return self.head(self.body(self.input_conv(x), self.cond_map(cond, x)))

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """``(B, C, H, W) -> (B, L, C, H, W)`` logits; ``cond``: see the module docstring."""
        return self.forward_scaled(self.scale(x), cond)

    def log_prob(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """``(B,)`` log-likelihood in nats of integer images ``(B, C, H, W)``."""
        nll = F.cross_entropy(self(x, cond), x.long(), reduction="none")  # (B, C, H, W)
        return -nll.flatten(1).sum(1)

    def sample(
        self,
        n: int,
        size: tuple[int, int] = (28, 28),
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        method: str = "fast",
        progress=None,
        cond=None,
    ) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` drawn from the model; see ``pixelgen.sampling.sample``."""
        from ..sampling import sample

        return sample(
            self,
            n,
            size,
            generator=generator,
            temperature=temperature,
            method=method,
            progress=progress,
            cond=cond,
        )

    def complete(
        self,
        x: torch.Tensor,
        known: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        method: str = "fast",
        progress=None,
        cond=None,
    ) -> torch.Tensor:
        """Fill the values of ``x`` not marked ``known``; see ``pixelgen.sampling.complete``."""
        from ..sampling import complete

        return complete(
            self,
            x,
            known,
            generator=generator,
            temperature=temperature,
            method=method,
            progress=progress,
            cond=cond,
        )


class RecurrentPixelModel(PixelModel):
    """Body of the two PixelRNNs (§3.4): a stack of recurrent layers, each with a 1x1
    mask-B residual projection back to ``2h`` maps and a learnable 1x1 mask-B skip
    projection to the output head. Without skips the head reads the last layer's
    residual stream; with skips it reads the sum of the skip projections (and the last
    layer then needs no residual projection)."""

    def __init__(
        self, *, layers: int = 7, residual: bool = True, skip: bool = True, **common
    ) -> None:
        super().__init__(**common)
        self.residual, self.skip = residual, skip
        f, h = self.features, self.hidden
        self.rnns = nn.ModuleList(self.make_layer(f, h) for _ in range(layers))
        n_res = layers - 1 if skip else layers
        self.res = nn.ModuleList(self._proj(h, f) for _ in range(n_res))
        self.skips = nn.ModuleList(self._proj(h, f) for _ in range(layers)) if skip else None
        self.add_condition([w for _ in range(layers) for w in self.cond_widths()])

    def make_layer(self, in_channels: int, hidden: int) -> nn.Module:
        raise NotImplementedError

    def cond_widths(self) -> list[int]:
        """The condition terms of one layer: its input-to-state gates."""
        return [4 * self.hidden]

    def layer_conds(self, cond: torch.Tensor | None) -> list:
        """What each layer's ``cond`` argument is: here its gate term (or None)."""
        terms = self.cond_terms(cond)
        return [None] * len(self.rnns) if terms is None else terms

    def _proj(self, i: int, o: int) -> MaskedConv2d:
        return MaskedConv2d(
            i, o, 1, mask_type="B", in_groups=self.groups(i), out_groups=self.groups(o)
        )

    def body(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, *, raw: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cond``: the prepared condition map or None; ``raw``: the scaled image, for a
        first layer that reads it as well."""

        def layer(l: int, rnn: nn.Module, x: torch.Tensor, c) -> torch.Tensor:
            return rnn(x, cond=c) if raw is None or l > 0 else rnn(x, raw, cond=c)

        return self.stack(x, self.layer_conds(cond), layer)

    def stack(self, x: torch.Tensor, conds: list, layer, project=None) -> torch.Tensor:
        """The layers with their residual and skip projections. ``layer(l, rnn, x, c)``
        runs layer ``l``; ``project(conv, y)`` runs a 1x1 projection (by default the
        module, which reads any ``(N, C, H, W)`` layout)."""
        project = project or (lambda conv, y: conv(y))
        out = 0
        for l, (rnn, c) in enumerate(zip(self.rnns, conds, strict=True)):
            y = layer(l, rnn, x, c)  # (B, h, H, W)
            if self.skips is not None:
                out = out + project(self.skips[l], y)
            if l < len(self.res):
                r = project(self.res[l], y)
                x = x + r if self.residual else r
        return out if self.skips is not None else x


def may_bypass(modules, kind: type) -> bool:
    """Whether a fast body may compute what ``modules`` compute without calling them: each
    is exactly ``kind`` (not a reference twin of ``nn.reference`` or another subclass) and
    carries no forward hooks (pruning, for one, reweights through a pre-hook)."""
    return all(type(m) is kind and not (m._forward_hooks or m._forward_pre_hooks) for m in modules)


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")

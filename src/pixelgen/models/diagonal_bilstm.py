"""Diagonal BiLSTM (§3.2): LSTM layers along the image's diagonals in both directions.
Its context is complete but for one value (see ``docs``/README: the last value of the
previous row, for pixels more than ``input_kernel // 2`` columns from the right edge).

``complete_context`` (off by default: the paper's model) closes that gap. The first
layer's right-to-left input-to-state gets an unmasked 1x1 term from the raw scaled image
(``rnns.0.right.raw_to_state``, a new parameter; the others are those of the paper's
model). Its states at row ``i - 1`` then see every value of row ``i - 1`` (all colours of
every pixel, the row's last value included) and of the rows above, and the down-shift adds
them to row ``i``, which may see all of those. Causal: in every layer, the input at a row
depends only on that row and the rows above, so no right-to-left state of row ``i - 1``
sees row ``i`` or later; the left-to-right direction is unchanged."""

from __future__ import annotations

import torch

from ..nn.diagonal_lstm import DiagonalBiLSTM, from_pixels, to_pixels
from ..nn.masked import MaskedConv2d
from ..registry import register_model
from .base import RecurrentPixelModel, may_bypass


class DiagonalBiLSTMModel(RecurrentPixelModel):
    """Diagonal BiLSTM: skewed 1x1 mask-B input-to-state, 2x1 state-to-state, both directions."""

    def __init__(self, *, complete_context: bool = False, **common) -> None:
        super().__init__(**common)
        self.complete_context = complete_context
        if complete_context:  # created last: the paper's parameters are drawn as without it
            self.rnns[0].right.add_raw_input(self.channels)

    def make_layer(self, in_channels: int, hidden: int) -> DiagonalBiLSTM:
        return DiagonalBiLSTM(in_channels=in_channels, hidden=hidden, colours=self.channels)

    def cond_widths(self) -> list[int]:
        """Each direction's input-to-state gates: terms ``2l`` (left to right) and ``2l + 1``."""
        return [4 * self.hidden, 4 * self.hidden]

    def layer_conds(self, cond: torch.Tensor | None) -> list:
        """The map and both directions' weights ``(2, 4h, c)``: the layer folds them into
        its own input-to-state product (see ``DiagonalBiLSTM.forward``)."""
        if cond is None:
            return [None] * len(self.rnns)
        w = self.condition.weight
        return [(cond, torch.stack([w(2 * l), w(2 * l + 1)])) for l in range(len(self.rnns))]

    def body(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, raw=None) -> torch.Tensor:
        if torch.jit.is_tracing() or not self._optimized():
            return super().body(x, cond, raw=raw)  # export, reference twins, hooks
        # The whole stack in the pixels' layout (C, H, W, B): the layers read and write it
        # without a copy, and each 1x1 projection is one product.
        raw = None if raw is None else to_pixels(raw)

        def layer(l: int, rnn: DiagonalBiLSTM, x: torch.Tensor, c) -> torch.Tensor:
            return rnn.pixels(x, raw if l == 0 else None, c)

        conds = self.layer_conds(cond)
        pixels = self.stack(to_pixels(x).contiguous(), conds, layer, MaskedConv2d.channels_first)
        return from_pixels(pixels)  # (B, 2h, H, W), a view

    def _optimized(self) -> bool:
        """Whether the layers and the projections may run without being called
        (``DiagonalBiLSTM.pixels``, ``MaskedConv2d.channels_first``)."""
        projections = [*self.res, *(self.skips or [])]
        return may_bypass(self.rnns, DiagonalBiLSTM) and may_bypass(projections, MaskedConv2d)

    def forward_scaled(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        raw = x if self.complete_context else None
        return self.head(self.body(self.input_conv(x), self.cond_map(cond, x), raw=raw))


@register_model
def diagonal_bilstm(**kwargs) -> DiagonalBiLSTMModel:
    return DiagonalBiLSTMModel(**kwargs)

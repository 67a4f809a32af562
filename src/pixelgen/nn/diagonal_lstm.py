"""The Diagonal BiLSTM layer (§3.2).

The input map is *skewed* (row ``i`` shifted right by ``i``) so that each column of the
skewed map is a diagonal of the image; an LSTM then runs column by column. Its
input-to-state part is a 1x1 convolution with mask B, its state-to-state part a 2x1
column convolution reading the previous column at rows ``i - 1`` and ``i`` (the pixels
above and to the left in the image). A second LSTM runs on the mirrored image (right to
left); its output is shifted down one row before the two are added, so that it only
carries rows above the current one::

    skew (H=3, W=3)        left-to-right state reads     right-to-left (shifted down)
    a b c . .                  . up .                       rows above, any column
    . d e f .                left  X                        . . . . .
    . . g h i                                               X (current row: nothing)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .lstm import gate_groups, lstm_update
from .masked import MaskedConv2d
from .masks import channel_groups


def skew(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, H, W + H - 1)``: row ``i`` shifted right by ``i``, zeros elsewhere."""
    b, c, h, w = x.shape
    flat = F.pad(x, (0, h)).reshape(b, c, h * (w + h))[..., : h * (w + h - 1)]
    return flat.reshape(b, c, h, w + h - 1)


def unskew(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`skew`: ``(B, C, H, W + H - 1) -> (B, C, H, W)``."""
    b, c, h, s = x.shape
    w = s - h + 1
    flat = F.pad(x.reshape(b, c, h * s), (0, h))
    return flat.reshape(b, c, h, w + h)[..., :w]


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """A zero row in front, the last row dropped: ``(B, C, H, W)`` kept."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class DiagonalLSTM(nn.Module):
    """One direction (left to right) of the Diagonal BiLSTM: ``(B, I, H, W) -> (B, h, H, W)``."""

    def __init__(self, *, in_channels: int, hidden: int, colours: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.input_to_state = MaskedConv2d(
            in_channels,
            4 * hidden,
            1,
            mask_type="B",
            in_groups=channel_groups(in_channels, colours),
            out_groups=gate_groups(hidden, colours),
        )
        # Columns of the 2x1 kernel: [row i-1 (above), row i (left)], stored as one
        # (4h, 2h) matrix so each step is a single matmul. Unmasked: both are earlier pixels.
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden, 2 * hidden))
        bound = 1.0 / math.sqrt(2 * hidden)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def state_gates(self, h_prev: torch.Tensor) -> torch.Tensor:
        """``K_ss ⊛ h_prev`` for one skewed column: ``(B, H, h) -> (B, H, 4h)``."""
        h_up = F.pad(h_prev, (0, 0, 1, 0))[:, :-1]  # row i reads row i-1
        return F.linear(torch.cat([h_up, h_prev], dim=-1), self.state_to_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        gates_in = skew(self.input_to_state(x))  # (B, 4h, H, S)
        gates_in = gates_in.permute(3, 0, 2, 1)  # (S, B, H, 4h): one column per step
        # Skew padding is not part of the image: its state stays exactly zero.
        valid = skew(x.new_ones(1, 1, height, width))[0, 0].t().unsqueeze(-1)  # (S, H, 1)
        h = x.new_zeros(b, height, self.hidden)
        c = torch.zeros_like(h)
        columns = []
        for s in range(gates_in.shape[0]):
            h, c = lstm_update(gates_in[s] + self.state_gates(h), c, dim=-1)
            h, c = h * valid[s], c * valid[s]
            columns.append(h)
        out = torch.stack(columns, dim=-1).transpose(1, 2)  # (B, h, H, S)
        return unskew(out)


class DiagonalBiLSTM(nn.Module):
    """Both directions: ``forward(x) = L2R(x) + shift_down(mirror(R2L(mirror(x))))``."""

    def __init__(self, *, in_channels: int, hidden: int, colours: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.left = DiagonalLSTM(in_channels=in_channels, hidden=hidden, colours=colours)
        self.right = DiagonalLSTM(in_channels=in_channels, hidden=hidden, colours=colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, I, H, W) -> (B, h, H, W)
        backward = self.right(x.flip(-1)).flip(-1)
        return self.left(x) + shift_down(backward)

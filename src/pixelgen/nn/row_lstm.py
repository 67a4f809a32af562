"""The Row LSTM layer (§3.1): an LSTM over rows, each row computed at once.

For row ``i``: ``gates_i = K_is ⊛ x_i + K_ss ⊛ h_{i-1}``, where ``K_is`` is a ``1 x k``
convolution along the row with mask B (the left neighbour and the current pixel's
allowed colours) computed for all rows up front, and ``K_ss`` is an unmasked ``1 x k``
convolution over the previous row's hidden state. Row ``i`` therefore sees a triangle
above it that widens by one pixel per row on each side.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .lstm import gate_groups, lstm_update
from .masked import MaskedConv2d
from .masks import channel_groups


class RowLSTM(nn.Module):
    """``(B, in_channels, H, W) -> (B, hidden, H, W)``; the state starts at zero above row 0."""

    def __init__(
        self,
        *,
        in_channels: int,
        hidden: int,
        colours: int,
        input_state_kernel: int = 3,
        state_kernel: int = 3,
    ) -> None:
        super().__init__()
        if state_kernel % 2 == 0:
            raise ValueError(f"state_kernel must be odd, got {state_kernel}")
        self.hidden = hidden
        self.input_to_state = MaskedConv2d(
            in_channels,
            4 * hidden,
            (1, input_state_kernel),
            mask_type="B",
            in_groups=channel_groups(in_channels, colours),
            out_groups=gate_groups(hidden, colours),
        )
        # The previous row is entirely earlier in the ordering: no mask.
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden, hidden, state_kernel))
        bound = 1.0 / math.sqrt(hidden * state_kernel)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def state_gates(self, h_prev: torch.Tensor) -> torch.Tensor:
        """``K_ss ⊛ h_prev`` for a whole row: ``(B, hidden, W) -> (B, 4*hidden, W)``."""
        k = self.state_to_state.shape[-1]
        return F.conv1d(h_prev, self.state_to_state, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        gates_in = self.input_to_state(x)  # (B, 4h, H, W), all rows at once
        h = gates_in.new_zeros(b, self.hidden, width)
        c = torch.zeros_like(h)
        rows = []
        for i in range(height):
            h, c = lstm_update(gates_in[:, :, i] + self.state_gates(h), c)  # (B, h, W)
            rows.append(h)
        return torch.stack(rows, dim=2)  # (B, h, H, W)

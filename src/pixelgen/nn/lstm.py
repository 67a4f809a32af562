"""The LSTM update shared by both recurrent layers (§3.1, §3.2).

``[o, f, i, g] = [σ, σ, σ, tanh](gates)``; ``c = f ⊙ c_prev + i ⊙ g``; ``h = o ⊙ tanh(c)``.
The four gates are consecutive blocks of ``hidden`` maps along ``dim``; maps at the same
index of each block belong to the same colour group, so the update never mixes groups.
"""

from __future__ import annotations

import torch

from .masks import channel_groups


def lstm_update(
    gates: torch.Tensor, c_prev: torch.Tensor, dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step; ``gates`` has ``4 * hidden`` maps along ``dim``. Returns ``(h, c)``."""
    o, f, i, g = gates.chunk(4, dim=dim)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gate_groups(hidden: int, colours: int) -> torch.Tensor:
    """Colour groups of the ``4 * hidden`` gate maps: the state's groups, once per gate."""
    return channel_groups(hidden, colours).repeat(4)

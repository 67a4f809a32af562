"""The plain reference layers: the yardstick for the optimized ones in ``pixelgen.nn``.

These are the first, straightforward implementations of the paper's layers (§3.1 Row
LSTM, §3.2 Diagonal BiLSTM, §3.4 masked convolutions), kept unchanged: one autograd op
after another, a Python loop over rows or skewed columns, ``torch.stack`` of the steps,
and both BiLSTM directions run one after the other. Their parameters and buffers have
the same names and shapes as the optimized layers', so one ``state_dict`` loads into
both; ``tests/test_layers.py`` checks that outputs and gradients agree, and
``benchmarks/run.py`` times them side by side.

:func:`reference_model` turns any pixelgen model into its reference twin (a deep copy
whose masked convolutions and recurrent layers are these classes, same weights).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelgen.nn.masks import channel_groups, conv_mask


def lstm_update(
    gates: torch.Tensor, c_prev: torch.Tensor, dim: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step; ``gates`` = ``[o, f, i, g]`` blocks along ``dim``. Returns ``(h, c)``."""
    o, f, i, g = gates.chunk(4, dim=dim)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gate_groups(hidden: int, colours: int) -> torch.Tensor:
    return channel_groups(hidden, colours).repeat(4)


class RefMaskedConv2d(nn.Module):
    """``conv2d(pad(x), weight * mask)``; only the kernel rows up to the centre are stored."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        *,
        mask_type: str,
        in_groups: torch.Tensor,
        out_groups: torch.Tensor,
        bias: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.kernel = (kh, kw)
        self.mask_type = mask_type
        self.register_buffer("mask", conv_mask(out_groups, in_groups, (kh, kw), mask_type))
        self.weight = nn.Parameter(torch.empty_like(self.mask))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        fan_in = max(1.0, float(self.mask.sum(dim=(1, 2, 3)).max()))
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)

    @property
    def padding(self) -> tuple[int, int, int, int]:
        kh, kw = self.kernel
        return (kw // 2, kw // 2, kh // 2, 0)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, I, H, W) -> (B, O, H, W)
        kh, kw = self.kernel
        if kh == 1 and kw == 1:
            return F.conv2d(x, self.masked_weight(), self.bias)
        return F.conv2d(F.pad(x, self.padding), self.masked_weight(), self.bias)


class RefRowLSTM(nn.Module):
    """Row LSTM (§3.1): ``(B, I, H, W) -> (B, h, H, W)``, one row per loop step."""

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
        self.hidden = hidden
        self.input_to_state = RefMaskedConv2d(
            in_channels,
            4 * hidden,
            (1, input_state_kernel),
            mask_type="B",
            in_groups=channel_groups(in_channels, colours),
            out_groups=gate_groups(hidden, colours),
        )
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden, hidden, state_kernel))
        bound = 1.0 / math.sqrt(hidden * state_kernel)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def state_gates(self, h_prev: torch.Tensor) -> torch.Tensor:
        k = self.state_to_state.shape[-1]
        return F.conv1d(h_prev, self.state_to_state, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        gates_in = self.input_to_state(x)  # (B, 4h, H, W)
        h = gates_in.new_zeros(b, self.hidden, width)
        c = torch.zeros_like(h)
        rows = []
        for i in range(height):
            h, c = lstm_update(gates_in[:, :, i] + self.state_gates(h), c)  # (B, h, W)
            rows.append(h)
        return torch.stack(rows, dim=2)  # (B, h, H, W)


def skew(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, H, W + H - 1)``: row ``i`` shifted right by ``i``."""
    b, c, h, w = x.shape
    flat = F.pad(x, (0, h)).reshape(b, c, h * (w + h))[..., : h * (w + h - 1)]
    return flat.reshape(b, c, h, w + h - 1)


def unskew(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`skew`."""
    b, c, h, s = x.shape
    w = s - h + 1
    flat = F.pad(x.reshape(b, c, h * s), (0, h))
    return flat.reshape(b, c, h, w + h)[..., :w]


def shift_down(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class RefDiagonalLSTM(nn.Module):
    """One direction of the Diagonal BiLSTM (§3.2), one skewed column per loop step."""

    def __init__(self, *, in_channels: int, hidden: int, colours: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.input_to_state = RefMaskedConv2d(
            in_channels,
            4 * hidden,
            1,
            mask_type="B",
            in_groups=channel_groups(in_channels, colours),
            out_groups=gate_groups(hidden, colours),
        )
        self.state_to_state = nn.Parameter(torch.empty(4 * hidden, 2 * hidden))
        bound = 1.0 / math.sqrt(2 * hidden)
        nn.init.uniform_(self.state_to_state, -bound, bound)

    def state_gates(self, h_prev: torch.Tensor) -> torch.Tensor:
        h_up = F.pad(h_prev, (0, 0, 1, 0))[:, :-1]
        return F.linear(torch.cat([h_up, h_prev], dim=-1), self.state_to_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, height, width = x.shape
        gates_in = skew(self.input_to_state(x))  # (B, 4h, H, S)
        gates_in = gates_in.permute(3, 0, 2, 1)  # (S, B, H, 4h)
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


class RefDiagonalBiLSTM(nn.Module):
    """``L2R(x) + shift_down(mirror(R2L(mirror(x))))``, the directions one after the other."""

    def __init__(self, *, in_channels: int, hidden: int, colours: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.left = RefDiagonalLSTM(in_channels=in_channels, hidden=hidden, colours=colours)
        self.right = RefDiagonalLSTM(in_channels=in_channels, hidden=hidden, colours=colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        backward = self.right(x.flip(-1)).flip(-1)
        return self.left(x) + shift_down(backward)


def _twin(module: nn.Module) -> nn.Module | None:
    """The reference class instance matching an optimized layer, or None for other modules.

    Sizes come from the parameters; the colour groups only shape the initial mask, which
    ``load_state_dict`` then overwrites, so one group suffices to build.
    """
    from pixelgen.nn.diagonal_lstm import DiagonalBiLSTM
    from pixelgen.nn.masked import MaskedConv2d
    from pixelgen.nn.row_lstm import RowLSTM

    if isinstance(module, MaskedConv2d):
        o, i = module.mask.shape[:2]
        one = torch.zeros(1, dtype=torch.long)
        return RefMaskedConv2d(
            i,
            o,
            module.kernel,
            mask_type=module.mask_type,
            in_groups=one.expand(i),
            out_groups=one.expand(o),
            bias=module.bias is not None,
        )
    if isinstance(module, RowLSTM):
        four_h, _, k_ss = module.state_to_state.shape
        return RefRowLSTM(
            in_channels=module.input_to_state.mask.shape[1],
            hidden=module.hidden,
            colours=1,
            input_state_kernel=module.input_to_state.kernel[1],
            state_kernel=k_ss,
        )
    if isinstance(module, DiagonalBiLSTM):
        return RefDiagonalBiLSTM(
            in_channels=module.left.input_to_state.mask.shape[1],
            hidden=module.hidden,
            colours=1,
        )
    return None


def to_reference(module: nn.Module) -> nn.Module:
    """Replace, in place, every optimized layer inside ``module`` by its reference twin
    holding the same parameters and buffers; returns ``module`` (or its twin)."""
    twin = _twin(module)
    if twin is not None:
        p = next(module.parameters())
        # Cast first: load_state_dict copies into the existing tensors, in their dtype.
        twin = twin.to(device=p.device, dtype=p.dtype).train(module.training)
        twin.load_state_dict(module.state_dict())
        return twin
    for name, child in list(module.named_children()):
        setattr(module, name, to_reference(child))
    return module


def reference_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` running the reference layers, with identical weights."""
    return to_reference(copy.deepcopy(model))

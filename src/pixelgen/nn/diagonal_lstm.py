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

Speed (the outputs are those of the plain formulation, which :meth:`DiagonalLSTM.forward`
and the export path keep):

* both directions advance together: their 1x1 input-to-state convolutions are one
  batched matrix product, and each skewed column of both is one ``baddbmm`` over the
  stacked state-to-state weights (the state add fused into it);
* only the *band* of a skewed column that lies inside the image is computed: column
  ``s`` holds rows ``max(0, s - W + 1) .. min(H - 1, s)``. The reference computes the
  skew padding too (and zeroes it), about half of all the work for square images;
* the band positions are *packed*: step ``s`` owns a contiguous slice of one buffer, with
  a zero row before and after it, so the states of rows ``i - 1`` and ``i`` of the
  previous column are two overlapping views (no padding, no masking). The skew is one
  ``index_select`` of the input pixels (before the input-to-state product, which has
  twice as many maps out as in), the unskew one per direction; their backward passes
  are gathers as well (:class:`_Gather`), and the output is made contiguous once for
  the 1x1 projections that read it;
* gates sit on an outer dimension (``(2, 4h, positions)``), so each gate block of a step
  is one contiguous stretch of memory for the elementwise LSTM update;
* the recurrence is one hand-written autograd function (:class:`_DiagonalRecurrence`)
  writing into preallocated buffers; each step's state-to-state product reads the
  previous column's states in place (two products, rows ``i - 1`` and ``i``). The
  backward pass runs the columns in reverse and gets the state-to-state gradient of all
  columns from one batched product per half;
* under tracing (``pixelgen export``) the two plain directions run instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import native
from .lstm import autocast_free, cell_backward, cell_forward, gate_groups, lstm_update
from .masked import MaskedConv2d
from .masks import channel_groups


def skew(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, H, W + H - 1)``: row ``i`` shifted right by ``i``, zeros
    elsewhere."""
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

    def __init__(
        self, *, in_channels: int, hidden: int, colours: int, raw_channels: int = 0
    ) -> None:
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
        # Optional (the complete-context model's right-to-left direction of its first
        # layer): an unmasked 1x1 map (4h, raw_channels) from the raw image into the
        # input-to-state gates. It sees every colour of the current pixel, so it is causal
        # only where the direction's output is shifted down a row (DiagonalBiLSTM).
        self.raw_to_state: nn.Parameter | None = None
        if raw_channels:
            self.add_raw_input(raw_channels)

    def add_raw_input(self, raw_channels: int) -> None:
        """Create ``raw_to_state`` (see ``__init__``); ``forward`` then needs ``raw``."""
        self.raw_to_state = nn.Parameter(torch.empty(4 * self.hidden, raw_channels))
        bound = 1.0 / math.sqrt(raw_channels)
        nn.init.uniform_(self.raw_to_state, -bound, bound)

    def state_gates(self, h_prev: torch.Tensor) -> torch.Tensor:
        """``K_ss ⊛ h_prev`` for one skewed column: ``(B, H, h) -> (B, H, 4h)``."""
        h_up = F.pad(h_prev, (0, 0, 1, 0))[:, :-1]  # row i reads row i-1
        return F.linear(torch.cat([h_up, h_prev], dim=-1), self.state_to_state)

    def forward(
        self, x: torch.Tensor, raw: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The plain formulation: skew, one step per skewed column, unskew. ``raw``: the
        scaled image ``(B, C, H, W)``, given exactly when ``raw_to_state`` exists; ``cond``:
        a condition's gate term ``(B, 4h, H or 1, W or 1)`` (§3.5)."""
        b, _, height, width = x.shape
        gates_in = self.input_to_state(x)  # (B, 4h, H, W)
        if self.raw_to_state is not None:
            gates_in = gates_in + F.conv2d(raw, self.raw_to_state[:, :, None, None])
        if cond is not None:
            gates_in = gates_in + cond
        gates_in = skew(gates_in)  # (B, 4h, H, S)
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
    """Both directions: ``forward(x) = L2R(x) + shift_down(mirror(R2L(mirror(x))))``.

    With ``raw_channels`` (the complete-context model's first layer) the right-to-left
    input-to-state also reads the raw scaled image, unmasked: ``forward(x, raw)``. Its
    state at row ``i - 1`` then sees all of row ``i - 1`` (the last value of the row
    included, which no mask-A feature of that row sees), and the down-shift hands it only
    to rows ``i`` and below."""

    def __init__(
        self, *, in_channels: int, hidden: int, colours: int, raw_channels: int = 0
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.left = DiagonalLSTM(in_channels=in_channels, hidden=hidden, colours=colours)
        self.right = DiagonalLSTM(
            in_channels=in_channels, hidden=hidden, colours=colours, raw_channels=raw_channels
        )

    def forward(
        self,
        x: torch.Tensor,
        raw: torch.Tensor | None = None,
        cond: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``(B, I, H, W) -> (B, h, H, W)``; ``raw`` ``(B, C, H, W)`` exactly when the
        right-to-left direction reads the raw image. ``cond``: a condition (§3.5), its map
        ``(B, c, H or 1, W or 1)`` and the two directions' 1x1 weights ``(2, 4h, c)``
        [left to right, right to left] into the input-to-state gates."""
        if torch.jit.is_tracing():  # export: the plain loops, which the tracers unroll
            self._check_raw(raw)
            return self.plain(x, raw, cond)
        out = self.pixels(to_pixels(x), None if raw is None else to_pixels(raw), cond)
        # Contiguous for the 1x1 projections that read it (a strided input makes their
        # batched products fall back to one small product and copy per image).
        return from_pixels(out).contiguous()  # (B, h, H, W)

    def pixels(
        self,
        x: torch.Tensor,
        raw: torch.Tensor | None = None,
        cond: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The same layer in the pixels' layout, maps first and images last: ``(I, H, W, B)
        -> (h, H, W, B)``, ``raw`` ``(C, H, W, B)``, ``cond`` as for ``forward``. A stack that
        keeps this layout (``models.diagonal_bilstm``) copies nothing between layers, and
        its 1x1 projections are single products (``MaskedConv2d.channels_first``)."""
        self._check_raw(raw)
        _, height, width, b = x.shape
        n = self.hidden
        plan = _plan(height, width, x.device)
        conv_l, conv_r = self.left.input_to_state, self.right.input_to_state
        w_l, w_r = conv_l.masked_weight()[..., 0, 0], conv_r.masked_weight()[..., 0, 0]
        if raw is not None:
            # The raw maps join the input; only the right-to-left weights read them.
            x = torch.cat([x, raw.to(x.dtype)], dim=0)
            w_raw = self.right.raw_to_state
            w_l = torch.cat([w_l, w_l.new_zeros(w_raw.shape)], dim=1)
            w_r = torch.cat([w_r, w_raw.to(w_r.dtype)], dim=1)
        if cond is not None:
            # The condition's maps join the input too, each direction with its own unmasked
            # weights: one product and one skew for both (a class is broadcast first).
            c_map, w_c = cond
            c_map = to_pixels(c_map.to(x.dtype)).expand(-1, height, width, b)
            x = torch.cat([x, c_map], dim=0)
            w_l = torch.cat([w_l, w_c[0].to(w_l.dtype)], dim=1)
            w_r = torch.cat([w_r, w_c[1].to(w_r.dtype)], dim=1)
        i = x.shape[0]
        # Skew both directions at once: each direction's pixels in packed band order (the
        # right-to-left one mirrored), gathered before the input-to-state product because
        # its input has half the maps of its output.
        pixels = x.reshape(i, height * width, b)  # (I, HW, B)
        packed = _Gather.apply(pixels, plan.gather, plan.gather_inverse)  # (I, 2*HW, B)
        packed = packed.view(i, 2, -1).transpose(0, 1)  # (2, I, HW*B)
        # Input-to-state of both directions: one batched product, bias fused.
        w_in = torch.stack([w_l, w_r])
        b_in = torch.stack([conv_l.bias, conv_r.bias]).unsqueeze(-1)  # (2, 4h, 1)
        gx = torch.baddbmm(b_in, w_in, packed)  # (2, 4h, HW*B), packed
        w_ss = torch.stack([self.left.state_to_state, self.right.state_to_state])  # (2, 4h, 2h)
        if torch.is_grad_enabled() and (gx.requires_grad or w_ss.requires_grad):
            states = _DiagonalRecurrence.apply(gx, w_ss, plan)
        else:
            with torch.no_grad(), autocast_free(gx.device.type):
                states = _diagonal_scan(gx, w_ss.to(gx.dtype), plan, save=False)[0]
        # Unskew: left-to-right at (i, j) plus right-to-left at (i - 1, j).
        states = states.view(2, n, -1, b)  # (2, h, padded, B)
        out = _Gather.apply(states[0], plan.left_out, plan.left_out_inverse)  # (h, HW, B)
        if height > 1:
            shifted = _Gather.apply(states[1], plan.right_out, plan.right_out_inverse)
            out[:, width:] += shifted  # (h, HW - W, B): row i gets R2L's row i - 1
        return out.view(n, height, width, b)

    def _check_raw(self, raw: torch.Tensor | None) -> None:
        if (raw is None) != (self.right.raw_to_state is None):
            raise ValueError("DiagonalBiLSTM: pass raw exactly when raw_channels > 0")

    def plain(self, x: torch.Tensor, raw=None, cond=None) -> torch.Tensor:
        """``forward`` as the paper writes it: each direction's plain loop (the mirrored
        right-to-left one reads the mirrored raw image and condition term)."""
        t_l = t_r = None
        if cond is not None:
            c_map, w_c = cond
            t_l = F.conv2d(c_map, w_c[0, :, :, None, None])  # (B, 4h, H or 1, W or 1)
            t_r = F.conv2d(c_map, w_c[1, :, :, None, None]).flip(-1)  # mirrored
        back_raw = None if raw is None else raw.flip(-1)
        backward = self.right(x.flip(-1), back_raw, t_r).flip(-1)
        return self.left(x, cond=t_l) + shift_down(backward)  # (B, h, H, W)


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (C, H, W, B)``, a view: the pixels' layout."""
    return x.permute(1, 2, 3, 0)


def from_pixels(x: torch.Tensor) -> torch.Tensor:
    """``(C, H, W, B) -> (B, C, H, W)``, a view."""
    return x.permute(3, 0, 1, 2)


class _Plan:
    """Where each position of the skewed band lives, for one image size (see module doc).

    Step ``s`` (a skewed column) covers rows ``lo[s] .. lo[s] + size[s] - 1``; in the
    packed buffers (gates, activations) it owns ``off[s] : off[s] + size[s]``; in the
    padded state buffers ``base[s] + 1 : base[s] + 1 + size[s]``, with zero rows at
    ``base[s]`` and ``base[s] + size[s] + 1`` (rows ``lo - 1`` and ``hi + 1``).
    """

    def __init__(self, height: int, width: int, device: torch.device) -> None:
        steps = height + width - 1
        self.lo = [max(0, s - width + 1) for s in range(steps)]
        self.size = [min(height - 1, s) - self.lo[s] + 1 for s in range(steps)]
        self.off = [sum(self.size[:s]) for s in range(steps)]
        self.base = [self.off[s] + 2 * s for s in range(steps)]
        hw = self.pixels = height * width
        self.padded = hw + 2 * steps
        left, right = [0] * hw, [0] * hw  # packed position -> image pixel, per direction
        left_out = [0] * hw  # image pixel -> padded state position, left to right
        right_out = [0] * hw  # image pixel -> padded state position, right to left
        for s in range(steps):
            for r in range(self.size[s]):
                i = self.lo[s] + r
                j = s - i  # column in the direction's own (for R2L: mirrored) image
                left[self.off[s] + r] = i * width + j
                right[self.off[s] + r] = i * width + (width - 1 - j)
                left_out[i * width + j] = self.base[s] + 1 + r
                right_out[i * width + (width - 1 - j)] = self.base[s] + 1 + r

        def as_index(v: list[int]) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.long, device=device)

        # Packed position -> padded state positions of the pixels above and to the left
        # in the previous column (adjacent there); pad rows where there is none.
        above, before = [0] * hw, [0] * hw
        above[0], before[0] = self.base[0], self.base[0] + 2  # column 0: its own pad rows
        for s in range(1, steps):
            for r in range(self.size[s]):
                above[self.off[s] + r] = self.base[s - 1] + self.lo[s] - self.lo[s - 1] + r
                before[self.off[s] + r] = above[self.off[s] + r] + 1
        self.gather = as_index(left + right)  # (2 * HW,)
        self.prev_above, self.prev_left = as_index(above), as_index(before)
        self.left_out = as_index(left_out)
        self.right_out = as_index(right_out[: hw - width])  # pixel (i - 1, j) for row i >= 1
        # The same gathers read backwards (see _Gather): source position -> where it went.
        # The skew reads every pixel once per direction, so it has one inverse per half.
        self.gather_inverse = (
            as_index(_inverse(left, hw, missing=2 * hw)),
            as_index(_inverse(right, hw, missing=2 * hw, offset=hw)),
        )
        self.left_out_inverse = (as_index(_inverse(left_out, self.padded, missing=hw)),)
        shifted = right_out[: hw - width]
        self.right_out_inverse = (as_index(_inverse(shifted, self.padded, missing=hw - width)),)

    def lists(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """``(lo, size, off, base)``: what the native scans read of the plan."""
        return self.lo, self.size, self.off, self.base


def _inverse(index: list[int], size: int, *, missing: int, offset: int = 0) -> list[int]:
    """For a gather ``out[offset + q] = src[index[q]]`` that reads no position twice: for
    each of the ``size`` source positions, the output position that read it, or
    ``missing`` (the zero slice :class:`_Gather` appends) if none did."""
    if len(set(index)) != len(index):
        raise ValueError("_inverse: the gather reads a position twice")
    inv = [missing] * size
    for q, p in enumerate(index):
        inv[p] = offset + q
    return inv


class _Gather(torch.autograd.Function):
    """``x.index_select(1, index)`` whose backward is gathers too.

    ``inverse`` holds one index per copy of a source position (``_inverse`` of each part
    of ``index`` that reads no position twice), pointing at the appended zero slice where
    a position was not read. The gradient is then the sum of those gathers from the output
    gradient with one zero slice appended: faster than ``index_select``'s own backward
    (``index_add_`` into zeros, which is slow on CPU), same values.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor, inverse: tuple) -> torch.Tensor:
        assert x.dim() == 3, "gathers along dim 1 of (maps, positions, batch)"
        ctx.inverse = inverse
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        padded = F.pad(grad, (0, 0, 0, 1))  # (C, N + 1, B): a zero slice at position N
        out = padded.index_select(1, ctx.inverse[0])
        for inv in ctx.inverse[1:]:
            out += padded.index_select(1, inv)
        return out, None, None


_PLANS: dict[tuple[int, int, torch.device], _Plan] = {}


def _plan(height: int, width: int, device: torch.device) -> _Plan:
    """The :class:`_Plan` of one image size, built once per size and device."""
    key = (height, width, device)
    if key not in _PLANS:
        if len(_PLANS) >= 64:  # many sizes (e.g. sampling growing images): keep it bounded
            _PLANS.clear()
        _PLANS[key] = _Plan(height, width, device)
    return _PLANS[key]


def _diagonal_scan(
    gx: torch.Tensor, w_ss: torch.Tensor, plan: _Plan, *, save: bool
) -> tuple[torch.Tensor, ...]:
    """Run the skewed columns of both directions together.

    ``gx``: packed input gates ``(2, 4h, HW * B)``; ``w_ss``: ``(2, 4h, 2h)``. Returns
    ``(states,)``, the padded states ``(2, h, padded * B)``, and with ``save`` also
    ``(act, tc, c)`` for the backward pass (see :func:`cell_forward`). Where the native
    scan (``nn/native.py``) is usable it runs instead; its ``act`` and ``tc`` are laid out
    per step (see ``csrc/recurrences.cpp``), which only its backward scan reads.
    """
    _, four_h, hwb = gx.shape
    n, b = four_h // 4, hwb // plan.pixels
    if native.usable(gx, w_ss):
        return tuple(
            native.load().diagonal_forward(
                gx.contiguous(), w_ss[..., :n], w_ss[..., n:], *plan.lists(), b, plan.padded, save
            )
        )
    w_above, w_left = w_ss[..., :n], w_ss[..., n:]  # (2, 4h, h) each
    new = gx.new_empty
    states, c = gx.new_zeros(2, n, plan.padded * b), gx.new_zeros(2, n, plan.padded * b)
    span = hwb if save else max(plan.size) * b
    act, tc = new(2, four_h, span), new(2, n, span)
    for s in range(len(plan.size)):
        size, off, base = plan.size[s], plan.off[s], plan.base[s]
        here = slice(off * b, (off + size) * b) if save else slice(0, size * b)
        inner = slice((base + 1) * b, (base + 1 + size) * b)
        if s == 0:
            a, c_prev = gx[..., here], None  # nothing before the first column
        else:
            # Rows i - 1 and i of column s - 1: two overlapping windows of its padded slot,
            # read in place by the two products (pad rows hold zeros).
            above = (plan.base[s - 1] + plan.lo[s] - plan.lo[s - 1]) * b
            left = above + b
            a = torch.baddbmm(
                gx[..., off * b : (off + size) * b], w_above, states[..., above : above + size * b]
            )
            # Out of place on purpose: FlopCounterMode (make bench) does not see baddbmm_.
            a = torch.baddbmm(a, w_left, states[..., left : left + size * b])
            c_prev = c[..., left : left + size * b]
        cell_forward(
            a, c_prev, act[..., here], c[..., inner], tc[..., here], states[..., inner], dim=1
        )
    return (states, act, tc, c) if save else (states,)


class _DiagonalRecurrence(torch.autograd.Function):
    """``(gx (2, 4h, HW*B), K_ss (2, 4h, 2h), plan) -> padded states``, exact gradients."""

    @staticmethod
    def forward(ctx, gx: torch.Tensor, w_ss: torch.Tensor, plan: _Plan) -> torch.Tensor:
        with autocast_free(gx.device.type):
            ctx.native = native.usable(gx, w_ss.to(gx.dtype))  # the backward reads its layout
            states, act, tc, c = _diagonal_scan(gx, w_ss.to(gx.dtype), plan, save=True)
        ctx.save_for_backward(w_ss, states, act, tc, c)
        ctx.plan, ctx.w_dtype = plan, w_ss.dtype
        return states

    @staticmethod
    def backward(ctx, d_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        w_ss, states, act, tc, c = ctx.saved_tensors
        plan = ctx.plan
        n = c.shape[1]
        hwb = act.numel() // (8 * n)
        b = hwb // plan.pixels
        d_states = d_states.to(act.dtype)
        w_t = w_ss.to(act.dtype).transpose(1, 2)  # (2, 2h, 4h)
        if ctx.native:
            d_gx = native.load().diagonal_backward(
                d_states.contiguous(), w_t, act, tc, c, *plan.lists(), b, plan.padded
            )
        else:
            d_gx = _diagonal_scan_backward(d_states, w_t, act, tc, c, plan)
        # The state-to-state gradient of every column from one batched product per half;
        # the previous states each position read are gathered again from the saved states.
        padded = states.view(2, n, plan.padded, b)
        up = padded.index_select(2, plan.prev_above).view(2, n, hwb)
        left = padded.index_select(2, plan.prev_left).view(2, n, hwb)
        d_w = torch.cat(
            [torch.bmm(d_gx, up.transpose(1, 2)), torch.bmm(d_gx, left.transpose(1, 2))], dim=2
        )  # (2, 4h, 2h)
        return d_gx, d_w.to(ctx.w_dtype), None


def _diagonal_scan_backward(
    d_states: torch.Tensor,
    w_t: torch.Tensor,
    act: torch.Tensor,
    tc: torch.Tensor,
    c: torch.Tensor,
    plan: _Plan,
) -> torch.Tensor:
    """The columns in reverse: ``d_states`` ``(2, h, padded * B)``, ``w_t`` ``(2, 2h, 4h)``
    and what :func:`_diagonal_scan` saved. Returns the packed pre-activation gradients
    ``(2, 4h, HW * B)``."""
    _, four_h, hwb = act.shape
    n, b = four_h // 4, hwb // plan.pixels
    d_gx = torch.empty_like(act)
    slot = (max(plan.size) + 2) * b
    # Gradients reaching the states / cells of the column being processed from the
    # next one, padded like the state buffers (the pad rows collect nothing useful).
    dh_acc, dc_acc = act.new_zeros(2, n, slot), act.new_zeros(2, n, slot)
    dh_prev, dc_prev = act.new_zeros(2, n, slot), act.new_zeros(2, n, slot)
    for s in range(len(plan.size) - 1, -1, -1):
        size, off, base = plan.size[s], plan.off[s], plan.base[s]
        here = slice(off * b, (off + size) * b)
        inner = slice(b, (1 + size) * b)
        dh = dh_acc[..., inner].add_(d_states[..., (base + 1) * b : (base + 1 + size) * b])
        dc = dc_acc[..., inner]
        c_prev = None
        if s > 0:
            above = (plan.base[s - 1] + plan.lo[s] - plan.lo[s - 1]) * b
            c_prev = c[..., above + b : above + b + size * b]
        cell_backward(dh, dc, act[..., here], tc[..., here], c_prev, d_gx[..., here], dim=1)
        if s == 0:
            break
        # Into column s - 1, whose padded slot starts at plan.base[s - 1].
        at = (plan.lo[s] - plan.lo[s - 1]) * b  # row lo - 1 within that slot
        d_col = torch.bmm(w_t, d_gx[..., here])  # (2, 2h, size*B): [above, left]
        dh_prev.zero_()
        dh_prev[..., at : at + size * b] += d_col[:, :n]
        dh_prev[..., at + b : at + b + size * b] += d_col[:, n:]
        dc_prev.zero_()
        dc_prev[..., at + b : at + b + size * b] = dc
        dh_acc, dh_prev, dc_acc, dc_prev = dh_prev, dh_acc, dc_prev, dc_acc
    return d_gx

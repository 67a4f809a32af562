"""The Row LSTM layer (§3.1): an LSTM over rows, each row computed at once.

For row ``i``: ``gates_i = K_is ⊛ x_i + K_ss ⊛ h_{i-1}``, where ``K_is`` is a ``1 x k``
convolution along the row with mask B (the left neighbour and the current pixel's
allowed colours) computed for all rows up front, and ``K_ss`` is an unmasked ``1 x k``
convolution over the previous row's hidden state. Row ``i`` therefore sees a triangle
above it that widens by one pixel per row on each side.

Speed (the outputs are those of the plain loop, which the export path keeps):

* the input-to-state convolution runs for all rows at once with only the kernel columns
  the mask lets through (left of and at the centre), on the input in the rows' layout
  ``(H, I, B, W)``, so that it writes the layout the recurrence reads: per row, ``(4h, B
  * W)``, gates on the outer dimension, every gate block one contiguous stretch of
  memory. The input's padding copy does the transposition, or, in a stack kept in that
  layout (:meth:`RowLSTM.rows`), nothing does;
* the recurrence is one hand-written autograd function (:class:`_RowRecurrence`). Each
  row step is a single ``addmm`` (the ``k`` taps of ``K_ss`` side by side against the
  im2col of the row above: the state convolution and the add of the input gates in one
  product) and the LSTM update into preallocated buffers. The backward pass runs the rows
  in reverse in the same layout and gets the gradient of ``K_ss`` for all rows from one
  batched product at the end (the im2col of all rows rebuilt from the saved states: it
  is not kept through the forward pass, to save memory);
* under tracing (``pixelgen export``) the plain loop of autograd ops runs instead, which
  the tracers unroll.
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

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, I, H, W) -> (B, h, H, W)``; ``cond``: a condition's gate term ``(B, 4h, H or
        1, W or 1)``, added to the input-to-state map (§3.5)."""
        if torch.jit.is_tracing():
            gates = self.input_to_state(x)
            return self._traceable(gates if cond is None else gates + cond)
        # The rows' layout costs no copy here: the convolution's padding writes it.
        out = self.rows(to_rows(x), None if cond is None else to_rows(cond))
        return to_rows(out)  # (B, h, H, W), a view

    def rows(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The same layer in the rows' layout: ``(H, I, B, W) -> (H, h, B, W)``, ``cond``
        ``(H or 1, 4h, B or 1, W or 1)``. A stack of layers that keeps this layout
        (``models.row_lstm``) copies no gates and no states between layers."""
        # A 1 x k convolution of (H, I, B, W) read as (N, C, H, W) convolves along the
        # row, image by image: the gates come out in the layout the recurrence reads.
        gx = self.input_to_state(x)  # (H, 4h, B, W)
        if cond is not None:
            gx = gx + cond
        height, four_h, b, width = gx.shape
        gx = gx.reshape(height, four_h, b * width)
        w = self.state_to_state
        if torch.is_grad_enabled() and (gx.requires_grad or w.requires_grad):
            out = _RowRecurrence.apply(gx, w, width)
        else:
            with torch.no_grad(), autocast_free(gx.device.type):
                out = _row_scan(gx, w.to(gx.dtype), width, save=False)[0]
        return out.view(height, self.hidden, b, width)

    def _traceable(self, gates_in: torch.Tensor) -> torch.Tensor:
        """The plain loop (the paper's equations, one autograd op at a time)."""
        b, _, height, width = gates_in.shape
        h = gates_in.new_zeros(b, self.hidden, width)
        c = torch.zeros_like(h)
        rows = []
        for i in range(height):
            h, c = lstm_update(gates_in[:, :, i] + self.state_gates(h), c)  # (B, h, W)
            rows.append(h)
        return torch.stack(rows, dim=2)  # (B, h, H, W)


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) <-> (H, C, B, W)``, a view: the rows' layout and back."""
    return x.permute(2, 1, 0, 3)


def _taps(w: torch.Tensor) -> torch.Tensor:
    """``K_ss`` ``(4h, h, k)`` as a ``(4h, k * h)`` matrix: column ``t * h + j`` is tap ``t``
    of state map ``j``, matching the im2col layout of the previous row."""
    four_h, h, k = w.shape
    return w.permute(0, 2, 1).reshape(four_h, k * h)


def _im2col(h_prev: torch.Tensor, col: torch.Tensor, width: int) -> None:
    """``col`` ``(..., k * h, B * W)`` := the ``k`` shifted copies of the previous rows'
    states ``(..., h, B * W)``, zero beyond the image's left and right edges."""
    *lead, n, m = h_prev.shape
    k = col.shape[-2] // n
    rows = h_prev.view(*lead, n, m // width, width)
    padded = F.pad(rows, (k // 2, k // 2))  # (..., h, B, W + 2p)
    windows = padded.unfold(-1, width, 1).movedim(-2, -4)  # (..., k, h, B, W)
    col.view(*lead, k, n, m // width, width).copy_(windows)


def _row_scan(
    gx: torch.Tensor, w: torch.Tensor, width: int, *, save: bool
) -> tuple[torch.Tensor, ...]:
    """Run the rows. ``gx``: input gates ``(H, 4h, B * W)``; ``w``: ``K_ss`` ``(4h, h, k)``.

    Returns ``(out,)``, the states ``(H, h, B * W)``, and with ``save`` also what the
    backward pass needs: ``(out, act, c, tc)`` (see :func:`cell_forward`). Runs the native
    scan (``nn/native.py``, same layouts) where it is usable.
    """
    if native.usable(gx, w):
        return tuple(native.load().row_forward(gx.contiguous(), _taps(w), width, save))
    height, four_h, m = gx.shape
    n, k = four_h // 4, w.shape[-1]
    taps = _taps(w)  # (4h, k*h)
    rows = height if save else 2  # without backward, two rows of buffers alternate
    new = gx.new_empty
    out = new(height, n, m)
    act, c, tc = new(rows, 4 * n, m), new(rows, n, m), new(rows, n, m)
    col = new(k * n, m)
    for i in range(height):
        t, prev = (i, i - 1) if save else (i % 2, (i - 1) % 2)
        if i == 0:
            a = gx[0]  # the state above row 0 is zero
        else:
            _im2col(out[i - 1], col, width)
            a = torch.addmm(gx[i], taps, col)  # the state convolution and the add, fused
        cell_forward(a, c[prev] if i else None, act[t], c[t], tc[t], out[i], dim=0)
    return (out, act, c, tc) if save else (out,)


class _RowRecurrence(torch.autograd.Function):
    """``(gx (H, 4h, B*W), K_ss (4h, h, k), W) -> states (H, h, B*W)``, exact gradients."""

    @staticmethod
    def forward(ctx, gx: torch.Tensor, w: torch.Tensor, width: int) -> torch.Tensor:
        with autocast_free(gx.device.type):
            out, act, c, tc = _row_scan(gx, w.to(gx.dtype), width, save=True)
        ctx.save_for_backward(w, out, act, c, tc)
        ctx.width, ctx.w_dtype = width, w.dtype
        return out

    @staticmethod
    def backward(ctx, d_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        w, out, act, c, tc = ctx.saved_tensors
        height, n, m = c.shape
        width, k = ctx.width, w.shape[-1]
        d_out = d_out.to(act.dtype)
        taps_t = _taps(w.to(act.dtype)).t()  # (k*h, 4h)
        if native.usable(act, d_out):
            d_gx = native.load().row_backward(d_out.contiguous(), taps_t, act, c, tc, width)
        else:
            d_gx = _row_scan_backward(d_out, taps_t, act, c, tc, width)
        # The state-to-state gradient of every row from one batched product; the im2col
        # of the rows is rebuilt here rather than kept from the forward pass (memory).
        cols = act.new_empty(height - 1, k * n, m)
        _im2col(out[:-1], cols, width)
        d_taps = torch.bmm(d_gx[1:], cols.transpose(1, 2)).sum(0)  # (4h, k*h)
        d_w = d_taps.view(4 * n, k, n).permute(0, 2, 1).to(ctx.w_dtype)
        return d_gx, d_w, None


def _row_scan_backward(
    d_out: torch.Tensor,
    taps_t: torch.Tensor,
    act: torch.Tensor,
    c: torch.Tensor,
    tc: torch.Tensor,
    width: int,
) -> torch.Tensor:
    """The rows in reverse: ``d_out`` ``(H, h, B*W)``, ``taps_t`` ``(k*h, 4h)`` and what
    :func:`_row_scan` saved. Returns the pre-activation gradients ``(H, 4h, B*W)``."""
    height, n, m = c.shape
    k = taps_t.shape[0] // n
    p = k // 2
    d_gx = torch.empty_like(act)  # (H, 4h, B*W)
    dc = act.new_zeros(n, m)
    d_pad = act.new_empty(n, m // width, width + 2 * p)
    dh = d_out[height - 1]
    for i in range(height - 1, -1, -1):
        cell_backward(dh, dc, act[i], tc[i], c[i - 1] if i else None, d_gx[i], dim=0)
        if i == 0:
            break
        d_col = torch.mm(taps_t, d_gx[i]).view(k, n, m // width, width)
        # col2im: tap t of column j read column j + t - p of the row above.
        d_pad.zero_()
        for t in range(k):
            d_pad[..., t : t + width] += d_col[t]
        dh = d_out[i - 1] + d_pad[..., p : p + width].reshape(n, m)
    return d_gx

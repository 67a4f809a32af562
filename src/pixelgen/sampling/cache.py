"""Pieces every fast stepper shares: masked convolutions evaluated one position at a time
from cached neighbours, 1x1 convolutions as matmuls, the output head, and the input layer.

Every layer of the three models is causal, so its activation at pixel ``(i, j)`` depends
only on earlier values: it can be computed when ``(i, j)`` is reached and never changes
afterwards. The steppers therefore compute each position of each layer once (once per
colour at the current pixel), keeping just the rows later positions still read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..nn.masked import MaskedConv2d
from .native_body import raster
from .stepper import Stepper

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from ..models.base import OutputHead


class WindowConv:
    """A ``k_h x k_w`` masked convolution evaluated at one position of the current row.

    Keeps the last ``k_h // 2 + 1`` rows of the layer's input, zero-padded left and right
    as ``MaskedConv2d`` pads them (rows above the image are zero too), channels last.
    """

    def __init__(self, conv: MaskedConv2d, batch: int, width: int) -> None:
        kh, kw = conv.kernel
        self.rows, self.kw, self.pad = kh // 2 + 1, kw, kw // 2
        w = conv.masked_weight()  # (O, I, rows, kw)
        if self.rows == 1:
            # A one-row kernel (Row LSTM input-to-state) never sees right of the centre:
            # those columns are masked out, so skip them.
            self.kw = self.pad + 1
            w = w[..., : self.kw]
        # Flattened in the order a window slice of the buffer flattens: (rows, kw, I).
        self.weight = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)  # (O, rows*kw*I)
        self.bias = conv.bias
        self.affine = Affine(self.weight, self.bias)
        self.buf = w.new_zeros(batch, self.rows, width + 2 * self.pad, w.shape[1])

    def next_row(self) -> None:
        """Drop the oldest row and open a zero one for the new current row, in place (a
        native body holds this buffer's storage)."""
        if self.rows > 1:
            self.buf[:, :-1] = self.buf[:, 1:].clone()
        self.buf[:, -1].zero_()

    def put(self, j: int, v: torch.Tensor) -> None:
        """Input at column ``j`` of the current row: ``v`` is ``(B, I)``."""
        self.buf[:, -1, j + self.pad] = v

    def put_span(self, row: int, j0: int, v: torch.Tensor) -> None:
        """Input at columns ``j0..`` of buffer row ``row``: ``v`` is ``(B, n, I)``."""
        self.buf[:, row, j0 + self.pad : j0 + self.pad + v.shape[1]] = v

    def __call__(self, j: int) -> torch.Tensor:  # -> (B, O)
        window = self.buf[:, :, j : j + self.kw]  # (B, rows, kw, I)
        return self.affine(window.reshape(window.shape[0], -1))


class Pointwise:
    """A 1x1 masked convolution at one position: ``(..., I) -> (..., O)``."""

    def __init__(self, conv: MaskedConv2d) -> None:
        if conv.kernel != (1, 1):
            raise ValueError(f"expected a 1x1 convolution, got {conv.kernel}")
        self.weight = conv.masked_weight()[:, :, 0, 0]  # (O, I)
        self.bias = conv.bias
        self.affine = Affine(self.weight, self.bias)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.affine(v) if v.dim() == 2 else F.linear(v, self.weight, self.bias)


class Affine:
    """``F.linear(v, weight, bias)`` for a ``(B, I)`` input, as one ``addmm`` (or ``mm``)
    on the transposed view ``F.linear`` itself would take. A fast step runs tens of
    thousands of these on tiny matrices, where ``linear``'s own dispatch (``t``, then
    ``addmm``) is a large part of the time; the product and its rounding are the same."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight_t = weight.t()  # (I, O), a view: the same memory F.linear reads
        self.bias = bias

    def __call__(self, v: torch.Tensor) -> torch.Tensor:  # (B, I) -> (B, O)
        if self.bias is None:
            return torch.mm(v, self.weight_t)
        return torch.addmm(self.bias, v, self.weight_t)


class CondTerms:
    """A condition's per-layer gate terms (``model.cond_terms``), read at one position or
    one row: each term ``(B, w, H or 1, W or 1)`` is kept as a channels-last view
    ``(B, H, W, w)`` (a class broadcast, not copied). The condition is known up front,
    so nothing here waits on drawn values."""

    def __init__(self, terms: list[torch.Tensor], batch: int, height: int, width: int) -> None:
        self.terms = [t.expand(batch, -1, height, width).permute(0, 2, 3, 1) for t in terms]

    def at(self, k: int, i: int, j: int) -> torch.Tensor:  # -> (B, w)
        return self.terms[k][:, i, j]

    def row(self, k: int, i: int) -> torch.Tensor:  # -> (B, W, w)
        return self.terms[k][:, i]


class HeadStep:
    """``OutputHead`` at one position for one colour: ``(B, 2h) -> (B, L)`` logits."""

    def __init__(self, head: OutputHead) -> None:
        self.hidden = Pointwise(head.hidden)
        out = Pointwise(head.out)
        # Output map c * L + v is colour c's logit of v: one (L, hidden) block per colour,
        # so a step computes only the colour it draws.
        self.out = [
            Affine(w, b)
            for w, b in zip(out.weight.split(head.levels), out.bias.split(head.levels), strict=True)
        ]

    def __call__(self, f: torch.Tensor, c: int) -> torch.Tensor:
        return self.out[c](F.relu(self.hidden(F.relu(f))))  # (B, L)


class CachedStepper(Stepper):
    """Input layer and head of a fast stepper; subclasses supply ``body_row``/``body_step``.

    The 7x7 mask-A input layer reads the scaled image through a ``WindowConv``. Its buffer
    is refreshed from ``x`` rather than told about each drawn value: the current row's
    window columns at every call, and the whole previous row when a row starts (the last
    colour of a pixel is set after the pixel's last call).
    """

    def __init__(
        self, model: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | None = None
    ) -> None:
        super().__init__(model, x, cond)
        self.batch, _, self.height, self.width = x.shape
        self.input = WindowConv(model.input_conv, self.batch, self.width)
        self.head = HeadStep(model.head)
        # The condition's terms of every layer (None: unconditional), computed once.
        self.terms = None
        if cond is not None:
            self.terms = CondTerms(model.cond_terms(cond), self.batch, self.height, self.width)

    #: The native body (``native_body.py``), set by a subclass where it applies.
    native = None

    #: Whether the native raster moves the input window on at each row (``fused_rows``).
    input_in_raster = False

    def fused_rows(self):
        """Whole rows in one native call (``native_body.raster``: input layer, body, head
        and draws), or None: the driver then steps through ``logits``. The raster also
        moves the input window on to each new row, so ``start_row`` leaves it alone."""
        if self.native is None:
            return None
        self.input_in_raster = True
        return raster(self)

    def start_row(self, x: torch.Tensor, i: int) -> None:
        if i > 0 and not self.input_in_raster:
            prev = self.model.scale(x[:, :, i - 1]).transpose(1, 2)  # (B, W, C)
            self.input.put_span(-1, 0, prev)
            self.input.next_row()
        self.body_row(i)

    def logits(self, x: torch.Tensor, i: int, j: int, c: int) -> torch.Tensor:  # -> (B, L)
        j0 = max(0, j - self.input.pad)
        self.input.put_span(-1, j0, self.model.scale(x[:, :, i, j0 : j + 1]).transpose(1, 2))
        return self.head(self.body_step(self.input(j), i, j), c)

    def body_row(self, i: int) -> None:
        """Work done once per row before its first pixel (e.g. state-to-state)."""

    def body_step(self, f: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """The body at pixel ``(i, j)``: ``(B, 2h) -> (B, 2h)``, caching what it needs."""
        raise NotImplementedError

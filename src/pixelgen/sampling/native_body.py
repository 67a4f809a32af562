"""The native (C++) bodies of the fast steppers: one call per pixel runs every block or
layer of the body (``nn/csrc/steppers.cpp``), where the Python steppers dispatch ~150 tiny
operations. Each builder returns None where the native path does not apply, and the
stepper then runs its Python body, which computes the same values:

* the extension is not built or is turned off (``PIXELGEN_NATIVE=0``, ``native.forced``),
  or the parameters (and a condition's terms) are not float32 / float64 on the CPU
  (``native.usable``).

A conditional model's body reads its layers' condition terms (``CondTerms``, views that
broadcast a class over the image) at each pixel, and the Gated PixelCNN's vertical stack
its vertical terms once per row; the Diagonal BiLSTM's right-to-left terms are added in
Python to the input gates its row scan reads.

The native body shares the Python stepper's caches (the ``WindowConv`` buffers, the row
states), which the stepper updates in place once per row; the weights are read here once,
transposed to ``(in, out)`` and contiguous.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..nn import native

if TYPE_CHECKING:  # sampling never imports the models at run time (see stepper.py)
    from .cache import CachedStepper, Pointwise, WindowConv
    from .diagonal_bilstm import DiagonalBiLSTMStepper
    from .gated_pixelcnn import GatedPixelCNNStepper
    from .pixelcnn import PixelCNNStepper
    from .recurrent import RecurrentStepper
    from .row_lstm import RowLSTMStepper


def _applies(stepper) -> Any:
    """The extension module, or None where a native body does not apply."""
    terms = [] if stepper.terms is None else stepper.terms.terms
    if not native.usable(stepper.input.weight, *terms):
        return None
    return native.load()


def _terms(stepper: CachedStepper, first: int = 0, every: int = 1) -> list[torch.Tensor]:
    """The condition's terms the body adds, one per layer (``first``, ``first + every``,
    ...: a model with two terms per layer), or none for an unconditional model."""
    return [] if stepper.terms is None else stepper.terms.terms[first::every]


def _t(weight: torch.Tensor) -> torch.Tensor:
    """``(out, in)`` -> ``(in, out)``, contiguous."""
    return weight.t().contiguous()


def _bias(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return weight.new_zeros(weight.shape[0]) if bias is None else bias.detach().contiguous()


def _maps(maps: list[Pointwise] | list[WindowConv]) -> tuple[list, list]:
    return [_t(m.weight) for m in maps], [_bias(m.weight, m.bias) for m in maps]


def _wiring(
    stepper: RecurrentStepper | GatedPixelCNNStepper,
) -> tuple[list, list, list, list, bool]:
    res_wt, res_b = _maps(stepper.res)
    skip_wt, skip_b = _maps(stepper.skips) if stepper.skips is not None else ([], [])
    return res_wt, res_b, skip_wt, skip_b, bool(stepper.residual)


def pixelcnn_body(stepper: PixelCNNStepper):
    mod = _applies(stepper)
    if mod is None:
        return None
    reduce, conv, expand = zip(*stepper.blocks, strict=True)
    kws = {(c.kw, c.pad, c.rows) for c in conv}
    if len(kws) != 1 or conv[0].rows == 1:  # one kernel for every block, as PixelCNN has
        return None
    return mod.PixelCNNBody(
        *_maps(reduce), *_maps(conv), [c.buf for c in conv], conv[0].kw, conv[0].pad,
        *_maps(expand), bool(stepper.residual), _terms(stepper),
    )  # fmt: skip


def row_lstm_body(stepper: RowLSTMStepper):
    mod = _applies(stepper)
    if mod is None:
        return None
    convs = stepper.input_to_state
    if len({c.pad for c in convs}) != 1:
        return None
    return mod.RowLSTMBody(
        *_maps(convs), [c.buf for c in convs], convs[0].pad,
        stepper.gates_ss, stepper.h, stepper.c, stepper.c_prev, *_wiring(stepper),
        _terms(stepper), [_state_taps(w) for w in stepper.state_to_state],
    )  # fmt: skip


def _state_taps(w: torch.Tensor) -> torch.Tensor:
    """``K_ss`` ``(4h, h, k)`` as ``(k * h, 4h)``: row ``t * h + j`` is tap ``t`` of state
    map ``j``, the order of the row's im2col in ``RowLSTMBody::start_row``."""
    four_h, h, k = w.shape
    return w.detach().permute(2, 1, 0).reshape(k * h, four_h).contiguous()


def diagonal_body(stepper: DiagonalBiLSTMStepper):
    mod = _applies(stepper)
    if mod is None:
        return None
    return mod.DiagonalBody(
        *_maps(stepper.left_in), [_t(w) for w in stepper.left_ss],
        stepper.inputs, stepper.h, stepper.c, stepper.h_above, stepper.right_above,
        *_wiring(stepper), _terms(stepper, 0, 2),  # term 2l: layer l's left to right
    )  # fmt: skip


def vertical_stack(stepper: GatedPixelCNNStepper):
    """The vertical stack once per finished row, in one call (``VerticalStack``): its
    input convolution, every layer's convolution, condition term, link and gate."""
    mod = _applies(stepper)
    if mod is None:
        return None
    windows = [stepper.v_input, *stepper.vertical]
    convs = [w.conv for w in windows]
    # Each weight flattened in the order of its window (rows, kw, I), as (in, out).
    wts = [c.weight.detach().permute(2, 3, 1, 0).reshape(-1, c.weight.shape[0]).contiguous()
           for c in convs]  # fmt: skip
    links_t = [_t(w) for w, _ in stepper.links]
    link_b = [_bias(w, b) for w, b in stepper.links]
    return mod.VerticalStack(
        wts, [_bias(c.weight, c.bias) for c in convs], [c.rows for c in convs],
        [c.k for c in convs], links_t, link_b, stepper.link_rows,
        _terms(stepper, 0, 2),  # term 2l: layer l's vertical
    )  # fmt: skip


def right_scan(stepper: DiagonalBiLSTMStepper):
    """The right-to-left scan over a finished row, every layer in one call (``RightScan``);
    the input gates (and the raw image's and condition's terms) stay in Python, batched."""
    mod = _applies(stepper)
    return None if mod is None else mod.RightScan([w.contiguous() for w in stepper.right_ss_t])


def gated_body(stepper: GatedPixelCNNStepper):
    """The horizontal stack at each pixel; it reads the link rows ``vertical_stack`` writes."""
    mod = _applies(stepper)
    if mod is None:
        return None
    convs = stepper.horizontal
    if len({c.pad for c in convs}) != 1:
        return None
    return mod.GatedBody(
        *_maps(convs), [c.buf for c in convs], convs[0].pad, stepper.link_rows,
        *_wiring(stepper), _terms(stepper, 1, 2),  # term 2l + 1: layer l's horizontal
    )  # fmt: skip


def raster(stepper: CachedStepper):
    """The native raster row over ``stepper``'s native body: its input window, the output
    head (one map per colour) and the draws, for ``driver._raster``. The row's values go
    straight into the driver's ``x``, which is therefore int64, as the driver makes it."""
    mod = native.load()
    head, window = stepper.head, stepper.input
    out_wt = [a.weight_t.contiguous() for a in head.out]  # (hidden, L) per colour
    out_b = [_bias(a.weight_t.t(), a.bias) for a in head.out]
    return mod.Raster(
        _t(window.weight), _bias(window.weight, window.bias), window.buf, window.kw,
        window.pad, stepper.model.levels, _t(head.hidden.weight),
        _bias(head.hidden.weight, head.hidden.bias), out_wt, out_b, stepper.native,
    )  # fmt: skip

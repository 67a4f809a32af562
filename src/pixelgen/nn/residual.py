"""The PixelCNN's stack of residual blocks (§3.3, Figure 5) in one autograd function.

Each block is ReLU, 1x1 (2h -> h), ReLU, k x k mask B (h -> h), ReLU, 1x1 (h -> 2h), added
to its input. The same arithmetic as the blocks' modules, with fewer passes over memory
and no autograd graph inside the stack:

* the 1x1 products write a fresh result that the bias and the ReLU then update in place,
  where the modules copy the broadcast bias first and the ReLU allocates a new tensor;
* the k x k convolution convolves only its stored rows (up to the centre, §3.4), padded
  by kh // 2 rows on both sides; the kh // 2 extra rows it then computes at the bottom are
  never read, and its ReLU (after the condition's term, §3.5) makes the result contiguous;
* each block's expansion is accumulated straight into the residual stream;
* the backward keeps only what it needs, per block the three ReLU outputs (the first is
  the 1x1's input, the others are their products' outputs), and reuses the stream's
  gradient in place.

The weights come in already masked (``MaskedConv2d.masked_weight``), so their gradients
flow back through the masks outside the function. It runs where autograd would run the
modules the same way: not under tracing, scripting, ``torch.compile`` or autocast (the
modules run there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_threshold_backward = torch.ops.aten.threshold_backward
_convolution_backward = torch.ops.aten.convolution_backward

# A block's weights, in this order: reduce (h, 2h) and its bias, the k x k kernel's stored
# rows (h, h, kh // 2 + 1, kw) and its bias, expand (2h, h) and its bias.
PER_BLOCK = 6


def usable(x: torch.Tensor) -> bool:
    """Whether :func:`residual_stack` may replace the modules for input ``x``."""
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)()
    if torch.jit.is_tracing() or torch.jit.is_scripting() or compiling:
        return False
    return not _autocast(x.device.type)


def _autocast(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        on_cpu = device_type == "cpu"
        return torch.is_autocast_cpu_enabled() if on_cpu else torch.is_autocast_enabled()


def residual_stack(
    x: torch.Tensor, weights: list[torch.Tensor], conds: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """``x + block(x)`` through every block: ``(B, 2h, H, W) -> (B, 2h, H, W)``.

    ``weights``: :data:`PER_BLOCK` tensors per block (see above); ``conds``: one term ``(B
    or 1, h, H or 1, W or 1)`` per block, added before the k x k convolution's ReLU, or
    None. ``x`` itself is left as it was.
    """
    conds = conds or []
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *weights, *conds)):
        return _ResidualStack.apply(x, len(conds), *weights, *conds)
    with torch.no_grad():
        return _forward(x, weights, conds, None)


def _forward(x, weights, conds, saved: list | None) -> torch.Tensor:
    b, c, h, w = x.shape
    stream = x.reshape(b, c, h * w)  # (B, 2h, HW)
    for k in range(len(weights) // PER_BLOCK):
        w1, b1, wk, bk, w3, b3 = weights[k * PER_BLOCK : (k + 1) * PER_BLOCK]
        a = F.relu(stream)  # (B, 2h, HW)
        y1 = torch.bmm(w1.expand(b, *w1.shape), a).add_(b1.view(1, -1, 1)).relu_()  # (B, h, HW)
        # Only the stored rows: the output gains kh // 2 rows at the bottom, never read.
        y2 = F.conv2d(y1.view(b, -1, h, w), wk, bk, padding=_padding(wk))[:, :, :h]
        y2 = F.relu(y2 if not conds else y2 + conds[k]).view(b, -1, h * w)  # (B, h, HW)
        w3 = w3.expand(b, *w3.shape)
        # The first block writes a new stream, so that the caller's ``x`` stays as it was;
        # the others add into it (``out=``, which FLOP counters see, unlike ``baddbmm_``).
        stream = torch.baddbmm(stream, w3, y2, out=None if k == 0 else stream)
        stream.add_(b3.view(1, -1, 1))
        if saved is not None:
            saved += [a, y1, y2]
    return stream.view(b, c, h, w)


def _block_backward(g, acts, ws, shape, cond):
    """One block's gradients: of its input's ReLU branch ``(B, 2h, HW)``, of its six
    weights, and of its condition term (``cond``: the term's shape, or None). ``g``: the
    stream's gradient."""
    b, _, h, w = shape
    a, y1, y2 = acts
    w1, _, wk, bk, w3, _ = ws
    d_b3 = g.sum((0, 2))
    d_w3 = torch.bmm(g, y2.transpose(1, 2)).sum(0)
    # The gradient of the convolution's whole output: zero on the rows never read.
    gy2_map = g.new_empty(b, wk.shape[0], h + wk.shape[2] - 1, w)
    gy2_map[:, :, h:].zero_()
    gy2 = gy2_map[:, :, :h]  # (B, h, H, W)
    _threshold_backward.grad_input(
        torch.bmm(w3.t().expand(b, -1, -1), g).view(b, -1, h, w), y2.view(b, -1, h, w), 0,
        grad_input=gy2,
    )  # fmt: skip
    d_cond = None if cond is None else gy2.sum_to_size(cond)
    gy1, d_wk, d_bk = _convolution_backward(
        gy2_map, y1.view(b, -1, h, w), wk, [bk.shape[0]], [1, 1], list(_padding(wk)), [1, 1],
        False, [0, 0], 1, [True, True, True],
    )  # fmt: skip
    gy1 = _threshold_backward(gy1.view(b, -1, h * w), y1, 0)  # (B, h, HW)
    d_b1 = gy1.sum((0, 2))
    d_w1 = torch.bmm(gy1, a.transpose(1, 2)).sum(0)
    ga = _threshold_backward(torch.bmm(w1.t().expand(b, -1, -1), gy1), a, 0)  # (B, 2h, HW)
    return ga, [d_w1, d_b1, d_wk, d_bk, d_w3, d_b3], d_cond


class _ResidualStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, n_conds: int, *tensors):
        weights, conds = _split(tensors, n_conds)
        saved: list[torch.Tensor] = []
        out = _forward(x, weights, conds, saved)
        # The condition terms' gradients need only their shapes, not the terms.
        ctx.save_for_backward(*saved, *weights)
        ctx.shape, ctx.n_acts = x.shape, len(saved)
        ctx.cond_shapes = [c.shape for c in conds]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        acts, weights, conds = saved[: ctx.n_acts], saved[ctx.n_acts :], ctx.cond_shapes
        b, c, h, w = ctx.shape
        g = grad.reshape(b, c, h * w)
        d_weights: list = [None] * len(weights)
        d_conds: list = [None] * len(conds)
        blocks = len(weights) // PER_BLOCK
        for k in reversed(range(blocks)):
            at = slice(k * PER_BLOCK, (k + 1) * PER_BLOCK)
            cond = conds[k] if conds else None
            ga, d_weights[at], d_cond = _block_backward(
                g, acts[3 * k : 3 * k + 3], weights[at], ctx.shape, cond
            )
            if conds:
                d_conds[k] = d_cond
            # The last block's add allocates: ``grad`` belongs to autograd.
            g = g + ga if k == blocks - 1 else g.add_(ga)
        return (g.view(b, c, h, w), None, *d_weights, *d_conds)


def _padding(kernel: torch.Tensor) -> tuple[int, int]:
    """``conv2d``'s padding for a kernel's stored rows ``(O, I, kh // 2 + 1, kw)``: kh // 2
    rows on top (and, unavoidably, at the bottom) and kw // 2 columns each side."""
    return kernel.shape[2] - 1, kernel.shape[3] // 2


def _split(tensors, n_conds: int) -> tuple[list, list]:
    """``(weights, conds)`` of the function's flat tensor arguments."""
    n = len(tensors) - n_conds
    return list(tensors[:n]), list(tensors[n:])

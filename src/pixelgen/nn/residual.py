"""The PixelCNN's stack of residual blocks (§3.3, Figure 5) in one autograd function.

Each block is ReLU, 1x1 (2h -> h), ReLU, k x k mask B (h -> h), ReLU, 1x1 (h -> 2h), added
to its input. The same arithmetic as the blocks' modules, with fewer passes over memory
and no autograd graph inside the stack:

* the 1x1 products write a fresh result that the bias and the ReLU then update in place,
  where the modules copy the broadcast bias first and the ReLU allocates a new tensor;
* the k x k convolution's ReLU (after the condition's term, §3.5) runs in place;
* each block's expansion is accumulated straight into the residual stream;
* the backward keeps only what it needs, per block the three ReLU outputs (the first is
  the 1x1's input, the others are their products' outputs), and reuses the stream's
  gradient in place.

The weights come in already masked (``MaskedConv2d.masked_weight``; the k x k kernel
completed with its zero rows below the centre), so their gradients flow back through the
masks outside the function. It runs where autograd would run the modules the same way:
not under tracing, scripting, ``torch.compile`` or autocast (the modules run there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_threshold_backward = torch.ops.aten.threshold_backward
_convolution_backward = torch.ops.aten.convolution_backward

# A block's weights, in this order: reduce (h, 2h) and its bias, the k x k kernel
# (h, h, kh, kw) and its bias, expand (2h, h) and its bias.
PER_BLOCK = 6


def usable(x: torch.Tensor) -> bool:
    """Whether :func:`residual_stack` may replace the modules for input ``x``."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    return not torch.is_autocast_enabled(x.device.type)


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
        pad = (wk.shape[2] // 2, wk.shape[3] // 2)
        y2 = F.conv2d(y1.view(b, -1, h, w), wk, bk, padding=pad)  # (B, h, H, W)
        if conds:
            y2.add_(conds[k])
        y2 = y2.relu_().view(b, -1, h * w)
        w3 = w3.expand(b, *w3.shape)
        # The first block writes a new stream, so that the caller's ``x`` stays as it was.
        stream = torch.baddbmm(stream, w3, y2) if k == 0 else stream.baddbmm_(w3, y2)
        stream.add_(b3.view(1, -1, 1))
        if saved is not None:
            saved += [a, y1, y2]
    return stream.view(b, c, h, w)


def _block_backward(g, acts, ws, shape, cond):
    """One block's gradients: of its input's ReLU branch ``(B, 2h, HW)``, of its six
    weights, and of its condition term (or None). ``g``: the stream's gradient."""
    b, _, h, w = shape
    a, y1, y2 = acts
    w1, _, wk, bk, w3, _ = ws
    d_b3 = g.sum((0, 2))
    d_w3 = torch.bmm(g, y2.transpose(1, 2)).sum(0)
    gy2 = _threshold_backward(torch.bmm(w3.t().expand(b, -1, -1), g), y2, 0)  # (B, h, HW)
    gy2_map = gy2.view(b, -1, h, w)
    d_cond = None if cond is None else gy2_map.sum_to_size(cond.shape)
    pad = [wk.shape[2] // 2, wk.shape[3] // 2]
    gy1, d_wk, d_bk = _convolution_backward(
        gy2_map, y1.view(b, -1, h, w), wk, [bk.shape[0]], [1, 1], pad, [1, 1], False, [0, 0], 1,
        [True, True, True],
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
        ctx.save_for_backward(*saved, *tensors)
        ctx.shape, ctx.n_conds, ctx.n_acts = x.shape, n_conds, len(saved)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        acts = saved[: ctx.n_acts]
        weights, conds = _split(saved[ctx.n_acts :], ctx.n_conds)
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


def _split(tensors, n_conds: int) -> tuple[list, list]:
    """``(weights, conds)`` of the function's flat tensor arguments."""
    n = len(tensors) - n_conds
    return list(tensors[:n]), list(tensors[n:])

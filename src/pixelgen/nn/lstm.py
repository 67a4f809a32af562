"""The LSTM update shared by both recurrent layers (§3.1, §3.2).

``[o, f, i, g] = [σ, σ, σ, tanh](gates)``; ``c = f ⊙ c_prev + i ⊙ g``; ``h = o ⊙ tanh(c)``.
The four gates are consecutive blocks of ``hidden`` maps along ``dim``; maps at the same
index of each block belong to the same colour group, so the update never mixes groups.

Besides the plain :func:`lstm_update` (used by the samplers and the exportable paths),
this module holds the pieces of the fast recurrences: :func:`cell_forward` and
:func:`cell_backward`, one LSTM step and its exact gradient with the three sigmoids done
as one op, written into preallocated buffers, and
:func:`autocast_free`, which the hand-written recurrences use to run in one dtype.
"""

from __future__ import annotations

import contextlib

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


def cell_forward(
    a: torch.Tensor,
    c_prev: torch.Tensor | None,
    act: torch.Tensor,
    c: torch.Tensor,
    tc: torch.Tensor,
    h: torch.Tensor,
    dim: int,
) -> None:
    """One LSTM step into preallocated tensors, the gates stacked along ``dim``.

    ``a``: pre-activations, ``4h`` long along ``dim`` (``[o, f, i, g]`` blocks); ``c_prev``:
    ``h`` long, or None for a zero state. Writes ``act = [σ(o), σ(f), σ(i), tanh(g)]``,
    ``c``, ``tc = tanh(c)`` and ``h = σ(o) ⊙ tanh(c)``; ``act`` and ``tc`` are what
    :func:`cell_backward` needs. With the gates on an outer dim each block is one
    contiguous stretch of memory, which the elementwise kernels run fastest on.
    """
    n = c.shape[dim]
    torch.sigmoid(a.narrow(dim, 0, 3 * n), out=act.narrow(dim, 0, 3 * n))  # o, f, i at once
    torch.tanh(a.narrow(dim, 3 * n, n), out=act.narrow(dim, 3 * n, n))
    o, f, i, g = act.split(n, dim)
    if c_prev is None:
        torch.mul(i, g, out=c)
    else:
        torch.mul(f, c_prev, out=c)
        c.addcmul_(i, g)
    torch.tanh(c, out=tc)
    torch.mul(o, tc, out=h)


def cell_backward(
    dh: torch.Tensor,
    dc: torch.Tensor,
    act: torch.Tensor,
    tc: torch.Tensor,
    c_prev: torch.Tensor | None,
    da: torch.Tensor,
    dim: int,
) -> None:
    """Gradient of one :func:`cell_forward` step.

    ``dh``: gradient of the step's ``h``; ``dc``: on entry the gradient reaching ``c`` from
    later steps, on exit (in place) the gradient of ``c_prev`` (``dc_total ⊙ f``).
    Writes the pre-activation gradient into ``da`` (gates along ``dim``).
    """
    n = dh.shape[dim]
    o, f, i, g = act.split(n, dim)
    d_o, d_f, d_i, d_g = da.split(n, dim)
    dc.addcmul_(dh * o, 1 - tc * tc)  # dc_total = dc_later + dh ⊙ o ⊙ (1 - tanh(c)²)
    torch.mul(dh, tc, out=d_o)  # ∂/∂σ(o)
    if c_prev is None:
        d_f.zero_()
    else:
        torch.mul(dc, c_prev, out=d_f)  # ∂/∂σ(f)
    torch.mul(dc, g, out=d_i)  # ∂/∂σ(i)
    torch.mul(dc, i, out=d_g)  # ∂/∂tanh(g)
    s = act.narrow(dim, 0, 3 * n)
    da.narrow(dim, 0, 3 * n).mul_(s - s * s)  # σ' = σ (1 - σ), the three sigmoids at once
    d_g.mul_(1 - g * g)
    dc.mul_(f)


def autocast_free(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off: a hand-written recurrence runs in the dtype of its gate inputs."""
    return torch.autocast(device_type=device_type, enabled=False)

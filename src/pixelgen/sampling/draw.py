"""Randomness of generation: every uniform is drawn up front and each value is sampled by
inverse CDF, so any two exact methods (fast, naive) turn the same seed into the same image."""

from __future__ import annotations

import torch


def draw_uniforms(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """``torch.rand(shape)`` in float64, on the generator's device (CPU by default).

    Drawing every value's uniform before the first step makes a sample a pure function of
    the seed and the model: the order in which a method visits values cannot change it.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=device)


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Values ``(B,)`` drawn from ``softmax(logits / temperature)`` by inverse CDF.

    ``logits`` is ``(B, L)``; ``u`` is ``(B,)`` uniforms in ``[0, 1)``. The value is the
    ``v`` with ``cdf[v - 1] <= u < cdf[v]``, computed in float64 so that logits equal to
    rounding give the same value.
    """
    probs = torch.softmax(logits.to(torch.float64) / temperature, dim=-1)  # (B, L)
    cdf = probs.cumsum(-1)
    # Counting cdf <= u skips zero-probability levels; the clamp covers a cdf whose
    # last entry rounds just below a u close to 1.
    v = (cdf <= u.to(cdf.device).unsqueeze(-1)).sum(-1)
    return v.clamp_(max=logits.shape[-1] - 1)

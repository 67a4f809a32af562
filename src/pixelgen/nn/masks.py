"""Masks A and B for convolutions over images read in raster-then-channel order (§3.4).

A mask is plain data: a 0/1 tensor shaped like a convolution weight ``(O, I, kh, kw)``,
built by the pure function :func:`conv_mask`, registered as a buffer and applied as
``weight * mask``. Rows below the kernel centre can never be used, so kernels keep only
the rows up to and including the centre row (``kh = k // 2 + 1``).

Spatial part, for a 5x5 kernel (``c`` is the centre, where the channel part applies)::

    1 1 1 1 1
    1 1 1 1 1
    1 1 c 0 0        (rows below the centre are not stored at all)

Channel part at the centre. Every feature map belongs to the group of one colour
(:func:`channel_groups`); with 3 colours, input group -> output group is allowed when::

              out R  out G  out B                 out R  out G  out B
    mask A  in R  .      1      1       mask B  in R  1      1      1
            in G  .      .      1               in G  .      1      1
            in B  .      .      .               in B  .      .      1

Mask A (the first layer) lets a colour see only earlier colours of the current pixel;
mask B (every later layer, 1x1 convolutions included) also lets it see its own group.
With one colour, mask A drops the centre and mask B keeps it.
"""

from __future__ import annotations

import torch


def channel_groups(n: int, colours: int) -> torch.Tensor:
    """Colour group of each of ``n`` feature maps: contiguous, near-equal blocks.

    >>> channel_groups(8, 3).tolist()
    [0, 0, 0, 1, 1, 1, 2, 2]
    """
    if n < colours:
        raise ValueError(f"{n} feature maps cannot be split into {colours} colour groups")
    return torch.arange(n) * colours // n


def conv_mask(
    out_groups: torch.Tensor,
    in_groups: torch.Tensor,
    kernel: tuple[int, int],
    mask_type: str,
) -> torch.Tensor:
    """The ``(O, I, k_h // 2 + 1, k_w)`` 0/1 mask of a ``k_h x k_w`` causal convolution.

    ``out_groups``/``in_groups`` give each output/input feature map's colour group;
    ``mask_type`` is ``"A"`` (strictly earlier colours at the centre) or ``"B"``
    (earlier colours and the own group). Kernel sides must be odd.
    """
    kh, kw = kernel
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got {kh}x{kw}")
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    rows, cy, cx = kh // 2 + 1, kh // 2, kw // 2
    o, i = out_groups.view(-1, 1), in_groups.view(1, -1)
    centre = (i < o) if mask_type == "A" else (i <= o)  # (O, I)
    mask = torch.zeros(len(out_groups), len(in_groups), rows, kw)
    mask[:, :, :cy, :] = 1.0  # every row above the centre
    mask[:, :, cy, :cx] = 1.0  # left of the centre in the centre row
    mask[:, :, cy, cx] = centre.float()
    return mask

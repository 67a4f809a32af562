"""Exact test-set likelihood: NLL in nats per image and bits per dimension (§4, §5).

``bits/dim = NLL_nats / (H·W·C·ln 2)``; a uniform model over 256 levels scores 8.00.
The standard error is over images. Under ``torchrun`` each rank takes a disjoint shard
and sums are reduced exactly. A model made of parts that score disjoint pixels (the
Multi-Scale PixelRNN, §3.5: ``model.parts(H, W)``) also gets each part's NLL, which add
up to the total.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from .distributed import Dist
from .errors import DataError


@dataclass(frozen=True)
class EvalResult:
    num_images: int
    nll_nats: float  # mean over images, summed over the image's values
    nll_nats_stderr: float
    bits_per_dim: float
    dims: int  # values per image: C·H·W
    # With ``details=True`` (one process): each image's NLL (N,) and the mean NLL of each
    # position summed over colours (H, W), both in nats.
    per_image: torch.Tensor | None = field(default=None, compare=False, repr=False)
    per_position: torch.Tensor | None = field(default=None, compare=False, repr=False)
    # ``{part: {"nll_nats", "bits_per_dim", "dims"}}`` for a model of parts, else None:
    # each part's mean NLL over its own values, in nats and per its own dimensions.
    parts: dict[str, dict] | None = None

    def as_dict(self) -> dict:
        skip = ("per_image", "per_position") + (() if self.parts else ("parts",))
        return {k: v for k, v in asdict(self).items() if k not in skip}


def check_compatible(model, dataset) -> None:
    """Refuse data whose channels or levels differ from the model's."""
    if dataset.levels != model.levels or dataset.channels != model.channels:
        raise DataError(
            f"data has {dataset.channels} channel(s) x {dataset.levels} levels but the model "
            f"expects {model.channels} x {model.levels}: {dataset.description}"
        )


def _check_distribution(logits: torch.Tensor) -> None:
    """The model's probabilities over levels, computed from its logits on their own (not
    from the log-softmax the NLL uses), are finite and sum to 1 at every position."""
    p = torch.softmax(logits.double(), dim=1)  # (B, L, C, H, W)
    error = (p.sum(dim=1) - 1).abs().max()
    if not torch.isfinite(p).all() or not error <= 1e-6:  # `not <=` also catches NaN
        raise DataError(
            f"model probabilities do not sum to 1 at every position (largest error {error:.2e})"
        )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset,
    *,
    batch_size: int = 64,
    max_images: int | None = None,
    device: torch.device | str = "cpu",
    dist: Dist | None = None,
    progress: Callable[[int], None] | None = None,
    details: bool = False,
) -> EvalResult:
    """NLL of the first ``max_images`` images of ``dataset`` (all if None); ``details``
    also keeps each image's NLL and the mean NLL at each position."""
    dist = dist or Dist()
    if details and dist.active:
        raise ValueError("evaluate(details=True) runs in one process")
    check_compatible(model, dataset)
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    if n == 0:
        raise DataError(f"nothing to evaluate: {dataset.description}")
    was_training = model.training
    model.eval()
    # Contiguous shards: rank r takes [r*n/world, (r+1)*n/world).
    lo, hi = dist.rank * n // dist.world_size, (dist.rank + 1) * n // dist.world_size
    sums = torch.zeros(3, dtype=torch.float64)  # count, sum nll, sum nll^2
    part_masks, part_sums = None, None
    per_image, position_sum = [], 0.0
    # A labelled set's classes go only to a model that reads them.
    conditional = getattr(model, "condition", None) is not None
    for start in range(lo, hi, batch_size):
        idx = range(start, min(start + batch_size, hi))
        x, values = _values(model, dataset, idx, device, conditional, check=start == lo)
        nll = values.flatten(1).sum(1).cpu()  # (B,)
        if not torch.isfinite(nll).all():
            raise DataError(f"the model gives a non-finite NLL (first batch at image {start})")
        if details:
            per_image.append(nll)
            position_sum = position_sum + values.sum((0, 1)).cpu()  # (H, W)
        sums += torch.stack([torch.tensor(float(len(nll))), nll.sum(), (nll**2).sum()])
        if part_masks is None and hasattr(model, "parts"):
            part_masks = {k: m.to(values.device) for k, m in model.parts(*x.shape[-2:]).items()}
            part_sums = torch.zeros(len(part_masks), dtype=torch.float64)
        if part_masks is not None:
            by_part = [(values * m).sum().cpu() for m in part_masks.values()]  # nats
            part_sums += torch.stack(by_part)
        if progress is not None:
            progress(len(nll))
    model.train(was_training)
    sums = dist.all_reduce_sum(sums.to(device)).cpu() if dist.active else sums
    if part_sums is not None and dist.active:
        part_sums = dist.all_reduce_sum(part_sums.to(device)).cpu()
    count, s1, s2 = sums.tolist()
    mean = s1 / count
    var = max(s2 / count - mean**2, 0.0) * count / max(count - 1, 1)
    dims = model.channels * x.shape[-2] * x.shape[-1]
    return EvalResult(
        num_images=int(count),
        nll_nats=mean,
        nll_nats_stderr=math.sqrt(var / count),
        bits_per_dim=mean / (dims * math.log(2)),
        dims=dims,
        per_image=torch.cat(per_image) if details else None,
        per_position=position_sum / count if details else None,
        parts=_parts(part_masks, part_sums, count, model.channels),
    )


def _values(
    model, dataset, idx: range, device, conditional: bool, *, check: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (B, C, H, W), the NLL of each of their values (B, C, H, W))`` in nats;
    ``check``: first make sure the model's outputs are a distribution."""
    x, labels = _batch(dataset, idx)
    labels = labels if conditional else None
    x = x.to(device=device, dtype=torch.long)
    logits = model(x) if labels is None else model(x, labels.to(device))  # (B, L, C, H, W)
    if check:
        _check_distribution(logits)
    logp = F.log_softmax(logits.double(), dim=1)
    return x, -logp.gather(1, x.unsqueeze(1)).squeeze(1)


def _batch(dataset, idx: range) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images ``(B, C, H, W)`` and, from a labelled ``ImageSet``, their classes ``(B,)``;
    any other indexable set of images gives no classes."""
    if hasattr(dataset, "batch"):
        return dataset.batch(idx)
    return torch.stack([dataset[i] for i in idx]), None


def _parts(masks, sums, count: float, channels: int) -> dict[str, dict] | None:
    """Each part's mean NLL per image, over its own ``channels * mask.sum()`` values."""
    if masks is None:
        return None
    out = {}
    for (name, mask), total in zip(masks.items(), sums.tolist(), strict=True):
        dims = channels * int(mask.sum())
        mean = total / count
        out[name] = {"nll_nats": mean, "bits_per_dim": mean / (dims * math.log(2)), "dims": dims}
    return out

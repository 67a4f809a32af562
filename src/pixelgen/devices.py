"""The one reader of a device name: ``train.device`` in a recipe and ``--device`` on the
command line."""

from __future__ import annotations

import os
import re

import torch

from .errors import ConfigError

PATTERN = r"auto|cpu|cuda(:\d+)?"


def parse_device(name: str, *, key: str = "--device", local_rank: int = 0) -> torch.device:
    """``auto`` (``cuda:LOCAL_RANK`` when CUDA is present, else ``cpu``), ``cpu``, ``cuda`` or
    ``cuda:N``; ``key`` names the setting in errors. Under torchrun a bare ``cuda`` means
    this process's GPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    if not re.fullmatch(PATTERN, name):
        raise ConfigError(f"{key}: expected auto, cpu, cuda or cuda:N, got {name!r}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}: {name!r} asked for, but CUDA is not available here; use cpu")
    if device.type == "cuda" and device.index is None and "WORLD_SIZE" in os.environ:
        device = torch.device("cuda", local_rank)
    return device

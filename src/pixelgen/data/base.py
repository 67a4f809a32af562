"""The `ImageSet` every loader returns: a map-style torch Dataset of uint8 images
(C, H, W) with values in [0, levels), plus the few facts a trainer or a report needs
(shape, number of levels, a one-line description, where the files came from).

Pixel RNNs model the discrete pixel values directly (paper §2.2), so images stay
integers here; scaling and centring the network input is the model's business."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConditionError, ConfigError

SPLITS = ("train", "valid", "test")


class ImageSet(Dataset):
    """Base class. Subclasses implement `_image(i)` returning a (C, H, W) uint8 array."""

    def __init__(
        self,
        *,
        name: str,
        split: str,
        channels: int,
        height: int,
        width: int,
        levels: int,
        description: str,
        sources: Sequence[str | os.PathLike[str]],
        options: dict[str, Any] | None = None,
        labels: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        no_labels: str = "",
    ) -> None:
        self.name = name
        self.split = split
        self.channels = channels
        self.height = height
        self.width = width
        self.levels = levels
        self.description = description
        self.sources = [str(s) for s in sources]
        self.options = dict(options or {})
        # Class labels (N,) in [0, len(class_names)) where the format carries them: what a
        # class-conditional model (model.condition: class) is given. ``no_labels`` says
        # why a set has none, for the one-line error.
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and class_names is None:
            class_names = [str(k) for k in range(int(self.labels.max(initial=-1)) + 1)]
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.no_labels = no_labels
        # With ``labelled`` (a conditional model's sets) an item is (image, label).
        self.labelled = False
        self.epoch = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def _image(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        img = self.image(i)
        return (img, int(self.labels[int(i)])) if self.labelled else img

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a uint8 tensor ``(C, H, W)``."""
        n = len(self)
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{self.name} {self.split}: index {i} out of range for {n} images")
        # A copy: the backing store may be a read-only memory map or a shared cache,
        # and callers are free to modify the tensor they get.
        img = np.array(self._image(i), dtype=np.uint8, copy=True)  # (C, H, W)
        return torch.from_numpy(img)

    def with_labels(self, key: str = "model.condition") -> ImageSet:
        """Make items ``(image, label)``; a set without labels is a one-line
        ``ConditionError`` naming ``key``, the recipe key that asked for them."""
        if self.labels is None:
            why = f" ({self.no_labels})" if self.no_labels else ""
            raise ConditionError(
                f"{key}: class needs class labels, but {self.name} {self.split} has none{why}"
            )
        self.labelled = True
        return self

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images ``(B, C, H, W)`` uint8 and, for a labelled set, their labels ``(B,)``."""
        idx = [int(i) for i in indices]
        images = torch.stack([self.image(i) for i in idx])
        if not self.labelled:
            return images, None
        return images, torch.from_numpy(self.labels[idx])

    def set_epoch(self, epoch: int) -> None:
        """Tell the set which epoch is starting (only dynamic binarization uses it)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def info(self) -> dict[str, Any]:
        """JSON-able summary for run reports."""
        return {
            "name": self.name,
            "split": self.split,
            "num_images": len(self),
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "levels": self.levels,
            "description": self.description,
            "sources": list(self.sources),
            "options": dict(self.options),
            "classes": None if self.class_names is None else list(self.class_names),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started with "spawn" pickle the set: drop open files
        # and memory maps (keys starting with "_cache"), they are reopened lazily.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}


class ArrayImageSet(ImageSet):
    """Images held in (or memory-mapped as) one array (N, C, H, W), optionally a row subset."""

    def __init__(self, array: np.ndarray, *, rows: range | None = None, **kw: Any) -> None:
        self.array = array  # (N, C, H, W) uint8
        self.rows = rows if rows is not None else range(array.shape[0])
        super().__init__(**kw)

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, i: int) -> np.ndarray:
        return self.array[self.rows[i]]  # (C, H, W)


def split_rows(dataset: str, split: str, num: int, valid_size: int) -> tuple[range, str]:
    """(rows of the published file, phrase for the description) for a split.

    "test" is the whole published test file. "train" and "valid" share the published
    training file: valid is its LAST `valid_size` images, so the carve is
    deterministic and the two never overlap."""
    if split == "test":
        return range(num), f"the {num} published test images"
    if valid_size >= num:
        raise ConfigError(
            f"data.valid_size={valid_size} must be less than the {num} training images of {dataset}"
        )
    if split == "valid" and valid_size == 0:
        raise ConfigError(f"data.valid_size is 0, so {dataset} has no 'valid' split; set it > 0")
    cut = num - valid_size
    if split == "train":
        return range(0, cut), f"first {cut} of the {num} training images"
    return range(cut, num), f"last {valid_size} of the {num} training images"

"""TensorBoard event files for a run (``train.tensorboard: true``, the optional extra
``pixelgen[tensorboard]``): the training and validation NLL and bits/dim, the learning
rate, images/s, and the sample grid of each validation, in ``RUN/tb/``. On resume, events
after the checkpoint's step are purged, as in ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..io import storage_error

INSTALL = "pip install 'pixelgen[tensorboard]' (or pip install tensorboard)"


def require() -> None:
    """A one-line error, before any work, when the extra is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(f"train.tensorboard: needs the tensorboard package: {INSTALL}") from None


class Board:
    """Writes a run's records to TensorBoard; rank 0 only."""

    def __init__(self, run_dir: Path, step: int) -> None:
        require()
        from torch.utils.tensorboard import SummaryWriter

        # steps after the checkpoint (> step) will be redone: their old events go
        try:
            self.writer = SummaryWriter(
                log_dir=str(run_dir / "tb"), purge_step=step + 1 if step else None
            )
        except OSError as exc:
            raise storage_error(run_dir / "tb", exc, kept="nothing was written") from None

    def record(self, record: dict) -> None:
        """One ``metrics.jsonl`` record (``split`` train or valid)."""
        split, step = record["split"], record["step"]
        for key in ("nll_nats", "bits_per_dim", "lr", "images_per_s"):
            if key in record:
                self.writer.add_scalar(f"{split}/{key}", record[key], step)

    def image(self, tag: str, path: Path, step: int) -> None:
        if path.is_file():
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"))  # (H, W, 3)
            self.writer.add_image(tag, array, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

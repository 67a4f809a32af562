"""Typed errors. The CLI turns every `PixelgenError` into a one-line message and
a non-zero exit code in one place (`pixelgen.cli.app.run`); anything else is a bug
and shows a traceback only when ``PIXELGEN_DEBUG=1``."""

from __future__ import annotations


class PixelgenError(Exception):
    """Base class: a problem the user can fix. ``exit_code`` is the process status."""

    exit_code = 1


class ConfigError(PixelgenError):
    """A recipe or --set value is invalid (unknown key, wrong type, out of range)."""

    exit_code = 2


class UnknownModelError(ConfigError):
    """A model name that is not in the registry."""


class ConditionError(ConfigError):
    """A condition that does not fit the model or the data: a class out of range, a
    condition given to an unconditional model (or none to a conditional one), a data set
    without the labels ``model.condition`` needs."""


class DataError(PixelgenError):
    """A data set is missing, unreadable, or does not match the model."""


class DataNotFoundError(DataError):
    """No search place holds the data set (``data.download: true`` then fetches it)."""


class CheckpointError(PixelgenError):
    """A checkpoint is missing, corrupt, or refused (e.g. it carries a pickle payload)."""


class ImageError(PixelgenError):
    """An input image or mask cannot be read or does not fit."""


class ExportError(PixelgenError):
    """An export failed or did not reproduce the checkpoint's logits."""


class TrainingError(PixelgenError):
    """Training stopped because it cannot go on (e.g. a non-finite loss)."""


class StorageError(PixelgenError):
    """A file cannot be written (a full disk, a read-only folder); nothing was lost."""

    full = False  # the disk (or the quota) was full

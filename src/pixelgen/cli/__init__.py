"""The ``pixelgen`` command line: one thin module per command (see ``app.py``)."""

from __future__ import annotations

from . import (  # noqa: F401  (each registers its commands)
    catalog,
    complete,
    download,
    eval,
    export,
    runs,
    sample,
    train,
)
from .app import app, entry, main

__all__ = ["app", "entry", "main"]

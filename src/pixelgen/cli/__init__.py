"""The ``pixelgen`` command line: one thin module per command (see ``app.py``)."""

from __future__ import annotations

from . import catalog, complete, eval, export, sample, train  # noqa: F401  (each registers its commands)
from .app import app, entry, main

__all__ = ["app", "entry", "main"]

"""Rich progress bars with rate and ETA, shared by train, eval, sample and complete."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def make_progress(*extra: str, console: Console | None = None, disable: bool = False) -> Progress:
    """A bar with M/N, elapsed and remaining time; ``extra`` are task fields shown after it
    (e.g. ``"loss"`` shows ``task.fields['loss']``)."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *[TextColumn(f"{{task.fields[{name}]}}") for name in extra],
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    return Progress(
        *columns,
        console=console or Console(stderr=True),
        disable=disable,
        transient=False,
        refresh_per_second=4,
    )

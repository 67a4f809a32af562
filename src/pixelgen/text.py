"""Small pieces of the one-line error messages, written once."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def did_you_mean(
    word: str, choices: Iterable[str], *, cutoff: float = 0.6, show: Callable[[str], str] = repr
) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""``; ``show`` turns
    the match into what the message prints."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {show(close[0])}?)" if close else ""


def first_line(exc: BaseException) -> str:
    """An exception's message reduced to one line, for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

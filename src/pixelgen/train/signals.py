"""Stop signals: SIGINT and SIGTERM end a run at a step boundary, never inside a
parameter update or a checkpoint write."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Stop(Exception):
    """Raised by the SIGTERM handler so that a terminated run saves like Ctrl-C."""


class StopSignals:
    """SIGINT and SIGTERM stop the run, but never inside ``protect()``: there the signal
    waits until the block ends, so that a saved step always matches its weights (the
    update of the parameters and of the step counter is one block) and no save is cut
    short by a second signal (torchrun sends SIGTERM after a peer died)."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None
        self.previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.depth:
            self.pending = signum
            return
        raise Stop() if signum == signal.SIGTERM else KeyboardInterrupt()

    @contextmanager
    def protect(self, *, deliver: bool = True):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if deliver and not self.depth and self.pending is not None:
            signum, self.pending = self.pending, None
            raise Stop() if signum == signal.SIGTERM else KeyboardInterrupt()

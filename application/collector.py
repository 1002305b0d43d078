"""Pausing Python's cyclic garbage collector for a batch that allocates far more than it
ever leaves in cycles (a backtest's events, a projection batch's rows, an engine step): the
collector would otherwise walk the growing heap again and again for almost nothing."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """The pauses under way in this process. WHY: threads overlap (an engine step beside a
    projection batch); each saving and restoring ``gc.isenabled()`` alone could leave the
    collector off for good. It runs again when the last pause ends, if it ran before the
    first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = True

    def begin(self) -> None:
        with self.lock:
            if self.count == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.count += 1

    def end(self) -> None:
        with self.lock:
            self.count -= 1
            if self.count == 0 and self.was_enabled:
                gc.enable()


_PAUSES = _Pauses()


@contextmanager
def collector_paused(*, freeze_existing: bool = False) -> Iterator[None]:
    """No cyclic collection inside; reference counting frees everything as usual.
    ``freeze_existing``: also keep what is alive now out of later full passes (a one-shot
    command's modules and data), until the block ends."""
    _PAUSES.begin()
    if freeze_existing:
        gc.freeze()
    try:
        yield
    finally:
        if freeze_existing:
            gc.unfreeze()
        _PAUSES.end()

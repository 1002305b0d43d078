"""Pausing Python's cyclic garbage collector for a batch that allocates far more than it
ever leaves in cycles (a backtest's events, a projection batch's rows, an engine step): the
collector would otherwise walk the growing heap again and again for almost nothing.

A start (``freeze_survivors``) also keeps what it built out of every later collection:
it allocates containers by the hundred thousand (every bot's engine, deal and orders) and
frees almost none; after a plain pause the collector would walk it all again, three times
(young, middle, then a full collection), on whichever thread allocates next. Measured on
the 10,000-bot bench log, one start in one process (CPU): 26,000 aggregates loaded from
their snapshots 2.0-2.7 s with the collector on, 1.2-1.6 s off; a whole start 6.5-7.1 s
paused without freezing (the walk moved after the pause), 5.8-6.3 s with one full
collection after it, 5.3-5.4 s frozen. Frozen objects are still freed by reference
counting; only a reference cycle among them is never reclaimed, which bounds what may stay
by what the start built. Once a process at most: a server starts once, and a process that
starts many (the tests) keeps only the first one's."""

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
        self.freeze = False  # a pause under way asked to freeze what lives when the last ends
        self.frozen = False  # done once in this process (never again)

    def begin(self, freeze_survivors: bool = False) -> None:
        with self.lock:
            if self.count == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.count += 1
            self.freeze = self.freeze or freeze_survivors

    def end(self) -> None:
        with self.lock:
            self.count -= 1
            if self.count:
                return
            if self.freeze and not self.frozen:
                gc.freeze()
                self.frozen = True
            self.freeze = False
            if self.was_enabled:
                gc.enable()


_PAUSES = _Pauses()


@contextmanager
def collector_paused(*, freeze_existing: bool = False,
                     freeze_survivors: bool = False) -> Iterator[None]:
    """No cyclic collection inside; reference counting frees everything as usual.
    ``freeze_existing``: also keep what is alive now out of later full passes (a one-shot
    command's modules and data), until the block ends. ``freeze_survivors``: when the last
    pause under way ends, keep what is alive then out of every later collection (a start's
    engines; once a process)."""
    _PAUSES.begin(freeze_survivors)
    if freeze_existing:
        gc.freeze()
    try:
        yield
    finally:
        if freeze_existing:
            gc.unfreeze()
        _PAUSES.end()

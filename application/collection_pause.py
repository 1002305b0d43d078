"""The cyclic garbage collector held off while a start builds its tens of thousands of
aggregates, engines and their dicts, and what the start built kept out of later
collections.

WHY: a start allocates containers by the hundred thousand and frees almost none of them;
every 700 allocations net CPython runs a collection, and every tenth of those an older one,
each walking what the start has built so far; after a plain pause the collector walks it
all again, three times (young, middle, then a full collection), on whichever thread
allocates next. Measured on the 10,000-bot bench log, one start in one process (CPU): 26,000
aggregates loaded from their snapshots 2.0-2.7 s with the collector on, 1.2-1.6 s off; a
whole start 6.5-7.1 s of the process's CPU paused without freezing (the walk moved after
the pause), 5.8-6.3 s with one full collection after it, 5.3-5.4 s frozen.

``freeze``: what is alive when the pause ends is moved to the collector's permanent
generation (``gc.freeze``): never walked again. It is still freed by reference counting
when let go; only a reference cycle among those objects is never reclaimed. That bounds
what may stay in memory by what the start built (an engine let go later, by a worker that
gives its bot away, may stay). Once a process at most: a server starts once, and a
process that starts many (the tests) keeps only the first one's.

Process-wide (the collector is): the pauses of several threads overlap, and the collector
comes back when the last one ends, and only if it was on when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """The pauses under way, over every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.under_way = 0
        self.was_enabled = False  # the collector's state when the first of them began
        self.freeze = False  # one of them asked to freeze what is alive when the last ends
        self.frozen = False  # done once in this process (never again)


_state = _Pauses()


@contextmanager
def collection_paused(*, freeze: bool = False) -> Iterator[None]:
    state = _state
    with state.lock:
        if state.under_way == 0:
            state.was_enabled = gc.isenabled()
            gc.disable()
        state.under_way += 1
        state.freeze = state.freeze or freeze
    try:
        yield
    finally:
        with state.lock:
            state.under_way -= 1
            if state.under_way == 0:
                if state.freeze and not state.frozen:
                    gc.freeze()
                    state.frozen = True
                state.freeze = False
                if state.was_enabled:
                    gc.enable()

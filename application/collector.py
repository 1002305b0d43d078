"""Pausing Python's cyclic garbage collector for a batch that allocates far more than it
ever leaves in cycles (a backtest's events, a projection batch's rows): the collector would
otherwise walk the growing heap again and again for almost nothing."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused(*, freeze_existing: bool = False) -> Iterator[None]:
    """No cyclic collection inside; reference counting frees everything as usual.
    ``freeze_existing``: also keep what is alive now out of later full passes (a one-shot
    command's modules and data), until the block ends."""
    was_enabled = gc.isenabled()
    if freeze_existing:
        gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        if freeze_existing:
            gc.unfreeze()

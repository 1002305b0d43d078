"""The fence of engine workers' appends (see ``application/leases.py``): every append a
worker makes for a bot carries the token it holds, set on the appending thread
(:func:`fenced`) and checked by the event store in the transaction that stores the events
(``adapters/event_store/leases.py``).

A fence also carries a user's exposure stamps (``application/exposure_holds.py``): the
versions an engine's buys were judged on (``stamps``: the append is refused when one moved
on), and the owners a position is opened for under their hold (``bumps``: moved on in the
append's transaction)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from uuid import UUID


@dataclass(frozen=True)
class Fence:
    """What an append must find in the lease table, in its own transaction."""

    worker: str
    tokens: dict[UUID, int]  # bot id -> the token this worker holds (-1: none held)
    stamps: dict[str, int] = field(default_factory=dict)  # owner -> stamp judged on
    bumps: frozenset[str] = frozenset()  # owners whose stamp this append moves on


_current = threading.local()


def current_fence() -> Fence | None:
    """The fence of the append under way on this thread (read by the event store)."""
    return getattr(_current, "fence", None)


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    """``fence`` for the appends on this thread inside; the ``bumps`` of an enclosing one
    (a position's hold) are kept: the engine worker's own fence of that append would
    otherwise drop them, and the stamp would not move on with the position."""
    previous = current_fence()
    _current.fence = _within(fence, previous)
    try:
        yield
    finally:
        _current.fence = previous


def _within(fence: Fence | None, outer: Fence | None) -> Fence | None:
    if outer is None or not outer.bumps:
        return fence
    if fence is None:
        return Fence(outer.worker, {}, bumps=outer.bumps)
    return replace(fence, bumps=fence.bumps | outer.bumps)

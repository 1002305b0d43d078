"""The fence of engine workers' appends (see ``application/leases.py``): every append a
worker makes for a bot carries the token it holds, set on the appending thread
(:func:`fenced`) and checked by the event store in the transaction that stores the events
(``adapters/event_store/leases.py``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Fence:
    """What an append must find in the lease table, in its own transaction."""

    worker: str
    tokens: dict[UUID, int]  # bot id -> the token this worker holds (-1: none held)


_current = threading.local()


def current_fence() -> Fence | None:
    """The fence of the append under way on this thread (read by the event store)."""
    return getattr(_current, "fence", None)


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    previous = current_fence()
    _current.fence = fence
    try:
        yield
    finally:
        _current.fence = previous

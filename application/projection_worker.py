"""Read models followed beside the engine, never inside a trading step: a thread of their
own that brings the projections up to the log's head whenever the engine (or a command)
says it appended something, and at least every ``poll`` seconds (other processes append
too), then offers the new events to subscribers.

The engine's thread only wakes it (``wake``: no I/O, no wait), so a slow projection never
holds a candle back; ``lag()`` is how far the read models are behind the log as the log
stands when asked (not when they last looked), so ``/health`` shows it honestly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from application.background import run_rounds

log = logging.getLogger("tradetape.projections")


class FollowedViews(Protocol):
    def catch_up(self) -> int: ...

    def lag(self) -> dict[str, int]: ...


class ProjectionWorker:
    def __init__(self, views: FollowedViews, after: Callable[[], Any] = lambda: None,
                 poll: float = 1.0):
        """``after``: run after each catch-up (the change feed's publishing)."""
        self.views, self.after, self.poll = views, after, poll
        self.last_error: str | None = None
        self.rounds = 0  # catch-ups run by the thread
        self._lock = threading.Lock()  # one catch-up at a time (the thread, or a command)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def catch_up(self) -> int:
        """Bring the read models up to the log's head now (the calling thread waits), then
        run ``after``: what a command does so that its caller reads its own change."""
        with self._lock:
            applied = self.views.catch_up()
        self.after()
        return applied

    def wake(self, _events: int = 0) -> None:
        """Something was appended: catch up soon (returns at once)."""
        self._wake.set()

    def lag(self) -> int:
        """Events the furthest-behind read model still has to apply."""
        return max(self.views.lag().values(), default=0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tradetape-projections",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the catch-up under way, then end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        run_rounds(self.catch_up, stop=self._stop, wake=self._wake, every=self.poll,
                   ended=self._caught_up)

    def _caught_up(self, error: str | None) -> None:
        """A failed round is tried again at the next one; /health says meanwhile."""
        self.last_error = error
        if error is not None:
            log.error("projections: catch-up failed: %s", error)
        self.rounds += 1

"""The loop of a background thread that works in rounds: the lease ticks
(``application.leases``) and the projections' catch-ups (``application.projection_worker``).

Its owner keeps the thread, the events and what a round means; this keeps the rules they
share: a round when woken or at the latest every ``every`` seconds, none once stopped (a
stop wakes the thread, which then ends without another round), and a round that raises
reported, not fatal, so that a database away for a while costs rounds, never the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_rounds(
    step: Callable[[], object],
    *,
    stop: threading.Event,
    wake: threading.Event,
    every: float,
    ended: Callable[[str | None], None],
) -> None:
    """``step()`` round after round until ``stop`` is set; after each, ``ended(None)``, or
    ``ended("Type: message")`` when it raised (the owner's ``last_error``, its log line)."""
    while not stop.is_set():
        wake.wait(every)
        wake.clear()
        if stop.is_set():
            return
        try:
            step()
        except Exception as error:  # the thread must outlive a bad round
            ended(f"{type(error).__name__}: {error}")
        else:
            ended(None)

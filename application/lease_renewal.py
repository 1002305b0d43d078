"""The renewal of an engine worker's leases and of its liveness row
(``application/leases.py``), on a thread of its own every quarter lease, whatever the lease
tick and the engine are doing: no engine lock, no manager lock (a tick holds both while it
takes bots over); only the store's, one short statement at a time. A tick that waits for
the engine lock behind a long step, or takes over a dead worker's bots for longer than a
lease, used to hold the renewal up with it, and the worker's other bots expired while it
was alive. A tick that has not finished for ``stall_rounds`` rounds is stuck: the renewal
stops, so that another worker takes the bots when their leases expire."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from application.background import run_rounds

log = logging.getLogger("tradetape.leases")

# Renewals per lease time: one or two may fail or come late (a loaded machine, a database
# that blinks) and the leases still hold.
RENEWALS_PER_LEASE = 4


class Renewed(Protocol):
    """What the renewal reads of its lease manager, each round."""

    seconds: float
    stall_rounds: int  # rounds a tick may last before the renewal stops

    def tick_under_way(self) -> int | None:
        """The serial of the tick under way, or None between ticks."""
        ...


class Renewal:
    def __init__(self, store, manager: Renewed, stop: threading.Event):
        self.store, self.manager, self.stop = store, manager, stop
        self.wake = threading.Event()  # set only at the stop: the thread ends at once
        self.stalled, self.seen = 0, None  # rounds the same tick has lasted; its serial
        self.failing = False
        self.thread = threading.Thread(target=self._run, name="tradetape-lease-renewal",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        run_rounds(self._round, stop=self.stop, wake=self.wake,
                   every=self.manager.seconds / RENEWALS_PER_LEASE, ended=self._ended)

    def _round(self) -> None:
        """One renewal, skipped while the tick is stalled."""
        serial = self.manager.tick_under_way()
        self.stalled = self.stalled + 1 if serial is not None and serial == self.seen else 0
        self.seen = serial
        rounds = self.manager.stall_rounds
        if self.stalled == rounds:
            log.error("the lease tick has not finished for %g s: leases no longer renewed, "
                      "another worker takes the bots",
                      self.stalled * self.manager.seconds / RENEWALS_PER_LEASE)
        if self.stalled >= rounds:
            return
        self.store.heartbeat(self.manager.seconds)
        self.store.extend(self.manager.seconds)

    def _ended(self, error: str | None) -> None:
        """A failed renewal (the database away) is retried a quarter lease later; said once
        per outage, not four times a lease."""
        if error is not None:
            if not self.failing:
                log.warning("lease renewal failed (retried every %g s): %s",
                            self.manager.seconds / RENEWALS_PER_LEASE, error)
            self.failing = True
        elif self.stalled < self.manager.stall_rounds:  # a skipped round says nothing
            if self.failing:
                log.warning("lease renewal works again")
            self.failing = False

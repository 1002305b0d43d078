"""The record of an emergency exit (a user's, or the system's for everyone): when it
started, for whom, and what it did. One aggregate per scope, so a second exit asked while
one runs finds it running (across processes: both race for the same version)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.recording import Cause, TradetapeAggregate

EVERYONE = "everyone"
# A run that started this long ago and never finished died with its process: a new exit
# may start (each step of an exit is safe to take again).
ABANDONED_AFTER = timedelta(minutes=10)


def exit_run_id(scope: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:emergency-exit:{scope}")


class EmergencyExitRun(TradetapeAggregate):
    scope: str  # the owner's id, or "everyone"
    running: bool
    started_at: datetime | None
    correlation: str | None  # of the run under way

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Installed(TradetapeAggregate.Created, Event):
        scope: str

        def apply(self, run: EmergencyExitRun) -> None:
            run.scope, run.running, run.started_at, run.correlation = (
                self.scope, False, None, None)

    class Started(Event):
        reason: str | None

        def apply(self, run: EmergencyExitRun) -> None:
            run.running, run.started_at = True, self.timestamp
            run.correlation = self.correlation_id

    class Finished(Event):
        bots_stopped: int
        deals_closed: int
        orders_cancelled: int
        problems: str  # each on its own line; empty when none

        def apply(self, run: EmergencyExitRun) -> None:
            run.running = False

    @classmethod
    def install(cls, scope: str, cause: Cause) -> EmergencyExitRun:
        return cls._start(cls.Installed, exit_run_id(scope), cause, scope=scope)

    def is_under_way(self, now: datetime) -> bool:
        return (self.running and self.started_at is not None
                and now < self.started_at + ABANDONED_AFTER)

    def start(self, cause: Cause, reason: str | None) -> None:
        self._record(self.Started, cause, reason=reason)

    def finish(self, cause: Cause, *, bots_stopped: int, deals_closed: int,
               orders_cancelled: int, problems: list[str]) -> None:
        self._record(self.Finished, cause, bots_stopped=bots_stopped,
                     deals_closed=deals_closed, orders_cancelled=orders_cancelled,
                     problems="\n".join(p[:300] for p in problems[:100]))

"""Emergency exit: get a user (or, for an administrator, everyone) out of the market now.

Each participant does its part for one owner: the bots participant here stops every bot,
cancels its resting orders and sells its open deal at market on whatever account it
trades; positions (another service) plug in the same way. One correlation id, carried by
the ``Cause`` every participant records with, ties all of the exit's events together; the
audit view marks them critical.

An exit asked again while one runs for the same scope does nothing a second time: the
run's own aggregate says it is under way (across processes: two starts race for one
version). A participant that fails does not stop the others: what it could not do is in
the report's problems.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from application.trading import Trading
from domain.emergency_exits import EVERYONE, EmergencyExitRun, exit_run_id
from domain.errors import ConcurrencyConflictError, NotFoundError
from domain.recording import Cause

log = logging.getLogger("tradetape.emergency")
CORRELATION_PREFIX = "emergency-exit:"


class ExitParticipant(Protocol):
    def exit_all(self, owner_id: UUID, cause: Cause) -> object:
        """Close out everything of ``owner_id`` this participant holds, recording with
        ``cause``. May return an :class:`ExitTally` of what it did (else nothing)."""
        ...


@dataclass
class ExitTally:
    bots_stopped: int = 0
    deals_closed: int = 0
    orders_cancelled: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: ExitTally) -> None:
        self.bots_stopped += other.bots_stopped
        self.deals_closed += other.deals_closed
        self.orders_cancelled += other.orders_cancelled
        self.problems += other.problems


@dataclass(frozen=True)
class ExitReport:
    """``already_running``: an exit of the same scope was under way; nothing was done
    (``correlation_id`` is that exit's)."""

    correlation_id: str
    scope: str
    already_running: bool
    tally: ExitTally


def is_emergency_correlation(correlation_id: str | None) -> bool:
    return bool(correlation_id) and correlation_id.startswith(CORRELATION_PREFIX)


class EmergencyExit:
    """``owners``: every owner a system-wide exit goes through (those with bots or
    accounts); ``lock``: held around each run in this process."""

    def __init__(self, participants: Sequence[ExitParticipant], *, trading: Trading,
                 owners: Callable[[], Iterable[str]] = list,
                 lock: threading.RLock | None = None):
        self.trading, self.participants, self.owners = trading, list(participants), owners
        self._lock = lock or threading.RLock()

    def run(self, owner_id: UUID, actor: str, reason: str | None = None) -> ExitReport:
        return self._run(str(owner_id), actor, reason, [owner_id])

    def run_for_everyone(self, actor: str, reason: str | None = None) -> ExitReport:
        return self._run(EVERYONE, actor, reason, None)

    def _run(self, scope: str, actor: str, reason: str | None,
             owners: list[UUID] | None) -> ExitReport:
        with self._lock:
            cause = self.trading.cause(actor, CORRELATION_PREFIX + self.trading.ids.new_id().hex)
            running = self._begin(scope, cause, reason)
            if running is not None:
                return ExitReport(running, scope, True, ExitTally())
            tally = ExitTally()
            try:
                for owner in owners if owners is not None else self._everyone():
                    tally.add(self._exit_owner(owner, cause))
            finally:
                self._finish(scope, cause, tally)
            log.warning("emergency exit %s of %s by %s: %d bots stopped, %d deals sold, "
                        "%d problems", cause.correlation_id, scope, actor, tally.bots_stopped,
                        tally.deals_closed, len(tally.problems))
            return ExitReport(cause.correlation_id, scope, False, tally)

    def _everyone(self) -> list[UUID]:
        found = []
        for owner in dict.fromkeys(self.owners()):
            try:
                found.append(UUID(owner))
            except ValueError:
                continue  # e.g. bots of backtests, owned by no user
        return found

    def _exit_owner(self, owner_id: UUID, cause: Cause) -> ExitTally:
        tally = ExitTally()
        for participant in self.participants:
            try:
                done = participant.exit_all(owner_id, cause)
            except Exception as error:  # the others must still run: an exit does its most
                log.error("emergency exit %s: %s failed for %s: %s", cause.correlation_id,
                          type(participant).__name__, owner_id, error)
                tally.problems.append(f"{type(participant).__name__}: {error}")
                continue
            if isinstance(done, ExitTally):
                tally.add(done)
        return tally

    def _begin(self, scope: str, cause: Cause, reason: str | None) -> str | None:
        """Record the start; the correlation id of the exit already under way instead."""
        try:
            run = self.trading.load(exit_run_id(scope), EmergencyExitRun)
        except NotFoundError:
            run = EmergencyExitRun.install(scope, cause)
        if run.is_under_way(cause.at):
            return run.correlation
        run.start(cause, reason)
        try:
            self.trading.save_all(run)
        except ConcurrencyConflictError:  # another process started one this instant
            again = self.trading.load(exit_run_id(scope), EmergencyExitRun)
            return again.correlation or cause.correlation_id
        return None

    def _finish(self, scope: str, cause: Cause, tally: ExitTally) -> None:
        for attempt in (1, 2):
            run = self.trading.load(exit_run_id(scope), EmergencyExitRun)
            run.finish(cause, bots_stopped=tally.bots_stopped, deals_closed=tally.deals_closed,
                       orders_cancelled=tally.orders_cancelled, problems=tally.problems)
            try:
                self.trading.save_all(run)
                return
            except ConcurrencyConflictError:
                if attempt == 2:
                    raise

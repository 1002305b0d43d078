"""Every process's background tasks where the api's ``/health`` reads them.

In a split deployment the reconciliation and the billing sweep run on ``engine`` processes,
which answer no HTTP: each process writes its tasks' reports (``TaskHealth.report``) into an
operational table of the shared database (``adapters/event_store/task_board.py``), keyed by
process and task, every ``every`` seconds, and ``/health`` shows every live process's rows
beside its own tasks. The rows hold no aggregate state (the truth stays in the events):
losing them only hides a report until the next publication. A process that stopped
reporting is dead once ``ttl`` has passed (by the database's clock): its rows are no longer
shown, and the next publication of any process deletes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from application.background import run_rounds
from application.task_health import ErrorKind, log_line
from domain.errors import TurnLostError  # noqa: F401  (raised by the lock adapters; callers import it here)

log = logging.getLogger("tradetape.task_board")
PUBLISH_SECONDS = 5.0
TTL_SECONDS = 30.0


@dataclass(frozen=True)
class Process:
    """The process that ran a task: a name unique in the deployment, its role, host, pid."""

    name: str
    role: str
    host: str
    pid: int


class TaskRows(Protocol):
    def publish(self, process: Process, reports: dict[str, dict[str, Any]],
                ttl_seconds: float) -> None:
        """Replace ``process``'s rows with ``reports`` (task -> report); delete the rows
        not reported for ``ttl_seconds``."""
        ...

    def rows(self, ttl_seconds: float) -> list[dict[str, Any]]:
        """Every row reported within ``ttl_seconds``, in task then process order: its
        report's keys and ``task``, ``process``, ``role``, ``host``, ``pid``,
        ``reported_at`` (ISO 8601)."""
        ...

    def forget(self, process: Process) -> None:
        """``process``'s rows deleted (it stopped)."""
        ...

    def close(self) -> None: ...


class TaskBoard:
    """This process's side: publishes its schedules' health on a thread of its own and
    reads the deployment's for ``/health``."""

    def __init__(self, rows: TaskRows, schedules: Callable[[], list[Any]], process: Process,
                 *, every: float = PUBLISH_SECONDS, ttl: float = TTL_SECONDS):
        self.rows, self.schedules, self.process = rows, schedules, process
        self.every, self.ttl = every, ttl
        self.last_error: str | None = None
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._published = False

    def publish(self) -> None:
        reports = {schedule.name: schedule.health.report() for schedule in self.schedules()}
        self.rows.publish(self.process, reports, self.ttl)
        self._published = True

    def start(self) -> None:
        self._wake.set()  # the first publication at once
        self._thread = threading.Thread(target=run_rounds, name="task-board", daemon=True,
                                        kwargs={"step": self.publish, "stop": self._stop,
                                                "wake": self._wake, "every": self.every,
                                                "ended": self._ended})
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _ended(self, error: str | None) -> None:
        if error and error != self.last_error:  # one line per new error, not per round
            log.warning("publishing the background tasks' health failed: %s", error)
        self.last_error = error

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._published:  # (none written: nothing to forget, no connection opened)
            try:  # stopped: not shown as alive for another ttl
                self.rows.forget(self.process)
            except Exception as error:  # expires anyway
                log.warning("forgetting this process's task rows failed: %s",
                            log_line(error))
        self.rows.close()

    def deployment(self) -> tuple[str, dict[str, Any]]:
        """Amber when a live process's task is (or the rows cannot be read)."""
        try:
            rows = self.rows.rows(self.ttl)
        except Exception as error:  # /health answers anyway: the kind, never the message
            return "amber", {"error": ErrorKind.of(error).kind, "tasks": []}
        amber = any(row.get("status") != "green" for row in rows)
        return ("amber" if amber else "green"), {"error": None, "tasks": rows}

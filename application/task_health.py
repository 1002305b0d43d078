"""What ``/health`` says of a task that runs on a schedule of its own (the reconciliation
and the billing sweep beside the trading loop, the wallet monitor, audit checkpoints).

A failed round is shown to the operator, amber, until a round of the task succeeds: the
error's kind (its class, with the library it comes from) and code (a DomainError's, a
database error's SQLSTATE), when it began and when it last happened. Never its message:
``/health`` answers anyone who asks, and a message may quote what it should not (a URL with
its query string, a row's values). The log gets one line per failed round: kind, code and
the message's first line with URL query strings cut, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")  # an identifier: never free text
_QUERY = re.compile(r"(https?://[^\s?#]+)[?#]\S*")
MAX_LOGGED_CHARS = 300
# What a task's round returns when it was not due (a tick that is no round: it neither
# clears nor counts a failure).
NOT_DUE = object()


@dataclass(frozen=True)
class ErrorKind:
    kind: str  # e.g. "KeyError", "psycopg.OperationalError", "DomainError"
    code: str | None  # a DomainError's code, a database error's SQLSTATE; None: none

    @classmethod
    def of(cls, error: BaseException) -> ErrorKind:
        module = type(error).__module__.split(".")[0]
        kind = type(error).__name__
        if module not in ("builtins", "domain", "application"):
            kind = f"{module}.{kind}"
        code = getattr(error, "code", None) or getattr(error, "sqlstate", None)
        return cls(kind, code if isinstance(code, str) and _CODE.match(code) else None)


def log_line(error: BaseException) -> str:
    """The error on one line for the operator's log: kind, code, the message's first line
    (URLs without their query strings, which may carry a key or a signature)."""
    found = ErrorKind.of(error)
    lines = str(error).strip().splitlines()
    first = _QUERY.sub(r"\1?…", lines[0]) if lines else ""
    text = f"{found.kind}{f' {found.code}' if found.code else ''}: {first}".rstrip(": ")
    return text[:MAX_LOGGED_CHARS]


class TaskHealth:
    """One task's rounds: the last success, and the failure under way since its first
    round that failed (cleared by the next round that succeeds)."""

    def __init__(self, now: Callable[[], datetime] | None = None):
        """``now``: the server's clock (None: no times are shown)."""
        self._now = now or (lambda: None)
        self.rounds = 0
        self.last_ok_at: datetime | None = None
        self.error: ErrorKind | None = None
        self.failing_since: datetime | None = None
        self.last_failed_at: datetime | None = None
        self.failures = 0  # rounds failed in a row
        # True while the task runs on one process of the deployment at a time and another
        # holds it (this one takes it over when that one dies)
        self.standby = False

    def succeeded(self) -> None:
        self.rounds += 1
        self.last_ok_at = self._now()
        self.error, self.failing_since, self.last_failed_at = None, None, None
        self.failures = 0

    def on_standby(self, standby: bool) -> None:
        """Another process runs the task now (True) or this one does again (False). Going
        on standby clears a failure shown here (e.g. the lock's connection lost): the task
        no longer runs here, and the process that runs it shows its own rounds."""
        if standby and not self.standby:
            self.error, self.failing_since, self.last_failed_at = None, None, None
            self.failures = 0
        self.standby = standby

    def failed(self, error: BaseException) -> None:
        self.rounds += 1
        at = self._now()
        self.error = ErrorKind.of(error)
        if self.failures == 0:
            self.failing_since = at
        self.last_failed_at, self.failures = at, self.failures + 1

    def report(self) -> dict[str, Any]:
        error = self.error
        return {"status": "green" if error is None else "amber", "standby": self.standby,
                "rounds": self.rounds,
                "last_ok_at": _iso(self.last_ok_at),
                "error": None if error is None else {
                    "kind": error.kind, "code": error.code, "since": _iso(self.failing_since),
                    "last_at": _iso(self.last_failed_at), "failures": self.failures}}


def tasks_health(schedules: list[Any]) -> tuple[str, dict[str, Any]]:
    """Amber while one of the tasks' last round failed; each task by name."""
    tasks = {schedule.name: schedule.health.report() for schedule in schedules}
    amber = any(task["status"] != "green" for task in tasks.values())
    return ("amber" if amber else "green"), {"tasks": tasks}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None

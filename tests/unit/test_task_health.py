"""What a background task's failure shows: on ``/health`` its kind and code and when, never
its message; in the log one line, with URL query strings (where some exchanges put a key
or a signature) cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from application.task_health import ErrorKind, TaskHealth, log_line, tasks_health
from domain.errors import DomainError

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current


class Schedule:
    def __init__(self, name: str, clock: Clock):
        self.name, self.health = name, TaskHealth(clock.now)


class LibraryError(Exception):
    """Stands for a library's error carrying a code (as psycopg's ``sqlstate``)."""

    __module__ = "somelib.errors"

    def __init__(self, message: str, code: object = None, sqlstate: object = None):
        super().__init__(message)
        self.code, self.sqlstate = code, sqlstate


def test_the_log_line_is_one_line_without_query_strings():
    error = LibraryError("GET https://api.example/v1/balance?apiKey=SECRET&sig=abc failed\n"
                         "DETAIL: row (alice, 42)", sqlstate="57P01")
    line = log_line(error)
    assert line == "somelib.LibraryError 57P01: GET https://api.example/v1/balance?… failed"


def test_only_a_code_shaped_like_an_identifier_is_shown():
    assert ErrorKind.of(DomainError("no", code="STRIPE_ERROR")) == ErrorKind(
        "DomainError", "STRIPE_ERROR")
    assert ErrorKind.of(LibraryError("x", code="not an identifier: key=sk_live_1")).code is None
    assert ErrorKind.of(LibraryError("x", code=503)).code is None
    assert ErrorKind.of(KeyError("free")) == ErrorKind("KeyError", None)


def test_a_failure_shows_from_its_first_round_until_a_round_succeeds():
    clock = Clock()
    task = Schedule("reconciliation", clock)
    task.health.succeeded()
    assert tasks_health([task])[0] == "green"
    first = clock.current = T0 + timedelta(minutes=1)
    task.health.failed(KeyError("secret message"))
    clock.current = T0 + timedelta(minutes=2)
    task.health.failed(KeyError("secret message"))
    status, detail = tasks_health([task])
    assert status == "amber"
    assert detail["tasks"]["reconciliation"] == {
        "status": "amber", "standby": False, "rounds": 3, "last_ok_at": T0.isoformat(),
        "error": {"kind": "KeyError", "code": None, "since": first.isoformat(),
                  "last_at": clock.current.isoformat(), "failures": 2}}
    assert "secret" not in str(detail)
    clock.current = T0 + timedelta(minutes=3)
    task.health.succeeded()
    status, detail = tasks_health([task])
    assert (status, detail["tasks"]["reconciliation"]["error"]) == ("green", None)
    assert detail["tasks"]["reconciliation"]["last_ok_at"] == clock.current.isoformat()


def test_a_failure_shown_here_goes_when_another_process_runs_the_task():
    clock = Clock()
    task = Schedule("billing-sweep", clock)
    task.health.failed(ConnectionError("the lock's connection was lost"))
    assert tasks_health([task])[0] == "amber"
    task.health.on_standby(True)  # another process holds the task now
    status, detail = tasks_health([task])
    assert status == "green"
    assert detail["tasks"]["billing-sweep"]["standby"] is True
    assert detail["tasks"]["billing-sweep"]["error"] is None
    task.health.on_standby(False)  # its turn again: its rounds show as before
    task.health.failed(KeyError("x"))
    assert tasks_health([task])[0] == "amber"
    task.health.on_standby(False)  # still its turn: the failure stays
    assert tasks_health([task])[0] == "amber"

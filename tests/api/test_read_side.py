"""The GraphQL read side on PostgreSQL: a few connections, so that one slow read (an answer
being made, the read version's check) never holds up the others, and never more of them
than it was given."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from api.graphql.read_side import ReadSide
from tests.api.conftest import open_server

pytestmark = pytest.mark.postgres
WAIT = 20.0  # seconds: far more than a read takes; only reached when a read is stuck


@pytest.fixture
def runtime(postgres_url, monkeypatch):
    runtime, _ = open_server(postgres_url, monkeypatch)
    try:
        yield runtime
    finally:
        runtime.stop()


def backend(store) -> int:
    return store.query("SELECT pg_backend_pid()")[0][0]


class Held:
    """A read that holds its connection until released (a slow answer being made)."""

    def __init__(self, read: ReadSide):
        self.read, self.begun, self.release = read, threading.Event(), threading.Event()
        self.backend: int | None = None
        self.thread = threading.Thread(target=read.run, args=(self._hold,), daemon=True)
        self.thread.start()
        assert self.begun.wait(WAIT)

    def _hold(self, store) -> None:
        self.backend = backend(store)
        self.begun.set()
        self.release.wait(WAIT)

    def end(self) -> None:
        self.release.set()
        self.thread.join(WAIT)


def read_in_thread(read: ReadSide) -> tuple[threading.Thread, list[int]]:
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(read.run(backend)), daemon=True)
    thread.start()
    return thread, found


def test_a_read_is_answered_while_another_holds_its_connection(runtime):
    read = ReadSide(runtime)
    held = Held(read)
    try:
        thread, found = read_in_thread(read)
        thread.join(WAIT)
        assert found and found[0] != held.backend
    finally:
        held.end()
        read.close()


def test_no_more_connections_than_given_the_next_read_waits_for_one(runtime):
    read = ReadSide(runtime, connections=2)
    first, second = Held(read), Held(read)
    try:
        thread, found = read_in_thread(read)
        thread.join(0.5)
        assert found == []  # both connections are taken: it waits
        first.end()
        thread.join(WAIT)
        assert found == [first.backend]  # on the connection given back
    finally:
        first.end()
        second.end()
        read.close()


def test_the_read_version_is_read_while_every_connection_is_in_use(runtime):
    read = ReadSide(runtime, connections=1)
    held = Held(read)
    try:
        found: list[int] = []
        thread = threading.Thread(target=lambda: found.append(read.run_apart(backend)),
                                  daemon=True)
        thread.start()
        thread.join(WAIT)
        assert found and found[0] != held.backend
    finally:
        held.end()
        read.close()


def test_closing_closes_every_connection_also_one_in_use(runtime):
    read = ReadSide(runtime)
    held = Held(read)  # in use at the close: closed when given back
    idle = read.run(backend)
    apart = read.run_apart(backend)
    read.close()
    held.end()

    # A closed connection's server process leaves pg_stat_activity a moment after the
    # client hung up (it exits on its own time: seen still listed on a loaded machine), so
    # the check waits for that, up to WAIT; a connection left open stays listed for good.
    other = ReadSide(runtime)
    pids = [held.backend, idle, apart]
    try:
        deadline = time.monotonic() + WAIT
        while True:
            alive = other.run(lambda store: store.query(
                "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)))
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        other.close()
    assert len(set(pids)) == 3 and alive == []


def test_a_read_after_its_connection_was_ended_by_the_server_gets_a_new_one(runtime):
    read = ReadSide(runtime, connections=1)
    other = ReadSide(runtime)
    try:
        first, apart = read.run(backend), read.run_apart(backend)
        other.run(lambda store: store.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)",
            ([first, apart],)))
        for run in (read.run, read.run_apart):  # the read that finds it ended fails
            with pytest.raises(psycopg.OperationalError):
                run(backend)
        again, apart_again = read.run(backend), read.run_apart(backend)
        assert first != again and apart != apart_again  # then new connections answer
    finally:
        read.close()
        other.close()

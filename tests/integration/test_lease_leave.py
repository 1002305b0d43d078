"""An engine worker leaving (its server shutting down) gives its bots away and its worker
row up, through a transient error (here: its connection cut); when it cannot, it says so
in one line, never raises, and the other workers still adopt its bots at once."""

from __future__ import annotations

import logging
import time

import psycopg

from application.settings import _connect_kwargs, parse_database_url
from tests.integration.test_engine_leases import Worker, leased_to, seed_bots

PASSWORD = "s3cret-not-for-logs"  # trust auth: accepted, and must never be logged


def admin(url: str) -> psycopg.Connection:
    return psycopg.connect(**_connect_kwargs(parse_database_url(url).env), autocommit=True)


def schema_of(url: str) -> str:
    return parse_database_url(url).env["POSTGRES_SCHEMA"]


def worker_rows(url: str, worker: str) -> int:
    with admin(url) as conn:
        (count,), = conn.execute(f'SELECT count(*) FROM "{schema_of(url)}".engine_workers '
                                 "WHERE worker = %s", (worker,)).fetchall()
    return count


def leave_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "tradetape.leases" and r.levelno >= logging.WARNING]


def test_a_leave_whose_connection_was_cut_gives_the_bots_away_all_the_same(
        postgres_url, caplog):
    bots = seed_bots(postgres_url, accounts=2)
    worker = Worker(postgres_url, "leaving", seconds=60)
    worker.leases.tick()
    assert worker.paper.bot_ids == set(bots)
    with admin(postgres_url) as conn:  # the server cut it (a restart, an idle timeout)
        conn.execute("SELECT pg_terminate_backend(%s)",
                     (worker.store._conn.info.backend_pid,))
    caplog.set_level(logging.WARNING, "tradetape.leases")
    worker.close()
    assert leased_to(postgres_url, "leaving") == set()
    assert leased_to(postgres_url, "") == set(bots)  # given away: shared out, not orphans
    assert worker_rows(postgres_url, "leaving") == 0
    assert leave_warnings(caplog) == []


def test_a_leave_that_keeps_failing_says_so_once_and_the_bots_are_adopted_at_once(
        postgres_url, monkeypatch, caplog):
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    bots = seed_bots(url, accounts=1)
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=100")  # lock waits end in 0.1 s
    worker = Worker(url, "stuck", seconds=60)
    worker.leases.tick()
    heir = Worker(url, "heir", seconds=60)
    caplog.set_level(logging.WARNING, "tradetape.leases")
    with admin(url) as blocker, blocker.transaction():  # another session holds a lease row
        blocker.execute(f'SELECT 1 FROM "{schema_of(url)}".engine_leases WHERE bot_id = %s '
                        "FOR UPDATE", (bots[0],))
        worker.store.leave()  # returns: a shutdown goes on
    (line,) = leave_warnings(caplog)
    assert "stuck" in line and "LockNotAvailable" in line and "3 attempt" in line
    assert PASSWORD not in line
    deadline = time.monotonic() + 5  # far less than the 60 s lease: its session lock is gone
    while heir.store.orphans(bots) != set(bots) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert heir.store.orphans(bots) == set(bots)
    worker.trading.close()
    heir.close()

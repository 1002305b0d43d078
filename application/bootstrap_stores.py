"""The composition root's stores: which of the library's recorders a database URL gets
(memory, SQLite, PostgreSQL), the audit key that seals its events, and snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.clock import RandomIds, SystemClock
from application.settings import parse_database_url, prepare

if TYPE_CHECKING:  # imported where used: `backtest` parses its file meanwhile
    from application.trading import Trading
    from domain.ports import Clock, IdSource


# The library's in-memory store, serialising each event when it is first read: a memory
# store's events are mostly never read (see adapters/event_store/memory.py).
MEMORY_EVENT_STORE = "adapters.event_store.memory"


# The library's PostgreSQL store, creating its tables under the DDL advisory lock, so that
# processes opening one database at once all come up (see adapters/event_store/postgres.py).
POSTGRES_EVENT_STORE = "adapters.event_store.postgres"


# The library's SQLite store, keeping the time each event was recorded beside it and
# sealing every event with the audit key (see adapters/event_store/sqlite.py and
# sealing.py; PostgreSQL's store above does both too).
SQLITE_EVENT_STORE = "adapters.event_store.sqlite"


def open_trading(
    url: str | None = None, *, clock: Clock | None = None, ids: IdSource | None = None
) -> Trading:
    """A :class:`Trading` on the store named by ``url`` (else ``TRADETAPE_DATABASE_URL``,
    else the default SQLite file), with the wall clock and random ids unless given.
    The caller closes it."""
    from application.trading import Trading

    database = parse_database_url(url)
    prepare(database)
    env = dict(database.env)
    if database.kind == "memory":
        env["PERSISTENCE_MODULE"] = MEMORY_EVENT_STORE
    else:
        env["PERSISTENCE_MODULE"] = (POSTGRES_EVENT_STORE if database.kind == "postgres"
                                     else SQLITE_EVENT_STORE)
        env.update(_audit_key_file(database))
        env.update(_snapshotting())
    return Trading(clock=clock or SystemClock(), ids=ids or RandomIds(), env=env)


def _snapshotting() -> dict[str, str]:
    """Snapshots of long-lived aggregates on stores that outlive the process (a disposable
    cache: ``TRADETAPE_SNAPSHOTS=0`` turns it off; see application/snapshots.py)."""
    import os

    return {} if os.environ.get("TRADETAPE_SNAPSHOTS", "1") == "0" else {
        "IS_SNAPSHOTTING_ENABLED": "y"}


def _audit_key_file(database) -> dict[str, str]:
    from adapters.security.audit_key import AUDIT_KEY_FILE_ENV, key_file_for

    path = key_file_for(database)
    return {AUDIT_KEY_FILE_ENV: str(path)} if path is not None else {}

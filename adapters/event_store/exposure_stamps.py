"""Users' exposure stamps on PostgreSQL (see ``application/exposure_holds.py``): table
``risk_exposure_stamps`` (owner, version) in the event store's schema, a per-user advisory
lock, and what the event store checks in the transaction of a stamped append.

- A position is opened under its owner's **hold**: a session advisory lock on a connection
  of this process's own, taken before its check and given back after its append. Its
  append moves the owner's stamp on (``bump``), in the append's own transaction, so a
  process killed after the append but before the unlock leaves the stamp moved on all the
  same.
- An engine's append of buys judged on a stamp waits for any hold of their owners (a shared
  transaction lock: engine appends never wait for each other), then is refused
  (``EXPOSURE_CHANGED``) when a stamp moved on since it was read: the figures it judged on
  lack a position appended meanwhile. The wait is bounded (``WAIT_SECONDS``): an api process
  hanging in a hold delays an engine's step by that much, then its append is refused.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import sql

from application.settings import Database, _connect_kwargs, lock_ddl
from domain.errors import ExposureChangedError

STAMPS = "risk_exposure_stamps"
CHANGED_MARK = "EXPOSURE_CHANGED"  # what a refused stamp makes PostgreSQL say (a failed cast)
WAIT_SECONDS = 5  # the longest an engine append waits for a position's hold
HOLD_WAIT_SECONDS = 10  # the longest a position waits for its owner's hold


# Holds are locks on buckets of owners, not one per owner. WHY: an engine append takes a
# shared lock per key it was judged on, and advisory locks live in PostgreSQL's shared lock
# table (64 x max_connections slots by default): a heavy candle judging 10,000 users would
# fail "out of shared memory". Two owners of one bucket only wait for each other's hold
# (milliseconds); a refusal is still decided by each owner's own stamp.
BUCKETS = 256


def lock_keys(schema: str, owner: str) -> tuple[int, int]:
    """The two int4 keys of ``owner``'s hold in ``schema``: the schema's (a name space
    apart from the leases' worker locks, whose first key hashes another text), and the
    owner's bucket."""
    def digest(text: str) -> int:
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")

    return digest(f"tradetape:exposure:{schema}") - 2 ** 31, digest(owner) % BUCKETS


def create_table(conn: Any, schema: str) -> None:
    with conn.transaction():
        lock_ddl(conn, schema)
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (owner text PRIMARY KEY, "
                             "version bigint NOT NULL)").format(sql.Identifier(schema, STAMPS)))


def check_stamps(curs: Any, schema: str, fence: Any) -> None:
    """In the append's transaction, after its leases (``check_fence``): the holds of the
    owners it was judged for waited out, their stamps as judged (else the statement fails
    by itself: ``CHANGED_MARK`` cast to an integer); then the stamps of ``fence.bumps``
    moved on."""
    stamps = getattr(fence, "stamps", None)
    if stamps:
        owners = sorted(stamps)
        keys = sorted({lock_keys(schema, owner) for owner in owners})
        curs.execute(sql.SQL("SET LOCAL lock_timeout = '{}s'").format(
            sql.SQL(str(int(WAIT_SECONDS)))))
        try:
            curs.execute("SELECT pg_advisory_xact_lock_shared(k1, k2) FROM unnest("
                         "%s::int[], %s::int[]) AS k(k1, k2)",
                         ([k[0] for k in keys], [k[1] for k in keys]))
        except psycopg.errors.LockNotAvailable:
            # Raised as ours: as the store's OperationalError, the append is tried 10 times
            raise changed(owners, "a position's hold lasted too long") from None
        curs.execute(sql.SQL(
            "SELECT CAST(CASE WHEN count(*) = %s THEN '0' ELSE %s END AS integer) FROM "
            "unnest(%s::text[], %s::bigint[]) AS s(owner, version) LEFT JOIN {} t "
            "ON t.owner = s.owner WHERE coalesce(t.version, 0) = s.version").format(
                sql.Identifier(schema, STAMPS)),
            (len(owners), CHANGED_MARK, owners, [stamps[o] for o in owners]))
    bumps = getattr(fence, "bumps", None)
    if bumps:
        curs.execute(sql.SQL(
            "INSERT INTO {t} AS t (owner, version) SELECT o, 1 FROM unnest(%s::text[]) AS o "
            "ORDER BY o ON CONFLICT (owner) DO UPDATE SET version = t.version + 1").format(
                t=sql.Identifier(schema, STAMPS)), (sorted(bumps),))


def changed(owners: list[str], why: str = "a position was opened meanwhile"
            ) -> ExposureChangedError:
    return ExposureChangedError(f"the exposure of {', '.join(owners)} may have changed "
                                f"since their buys were judged ({why}): nothing was "
                                "written", owners)


class PostgresExposureStamps:
    """One process's side: stamps read, and holds taken, on a connection of its own."""

    def __init__(self, database: Database):
        self.schema = database.env.get("POSTGRES_SCHEMA") or "public"
        self._kwargs = _connect_kwargs(database.env)
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()
        self.table = sql.Identifier(self.schema, STAMPS)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(**self._kwargs, autocommit=True, connect_timeout=5)
            create_table(self._conn, self.schema)
            self._conn.execute(sql.SQL("SET lock_timeout = '{}s'").format(
                sql.SQL(str(int(HOLD_WAIT_SECONDS)))))
        return self._conn

    def _run(self, statement: Any, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                cursor = self._connection().execute(statement, params)
            except psycopg.OperationalError:
                self.close()  # connection gone: the next call connects again
                raise
            return cursor.fetchall() if cursor.description else []

    def version(self, owner: str) -> int:
        rows = self._run(sql.SQL("SELECT version FROM {} WHERE owner = %s").format(self.table),
                         (owner,))
        return int(rows[0][0]) if rows else 0

    @contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        """``owner``'s hold while inside (``lock_not_available`` after HOLD_WAIT_SECONDS)."""
        keys = lock_keys(self.schema, owner)
        with self._lock:
            self._run("SELECT pg_advisory_lock(%s, %s)", keys)
            try:
                yield
            finally:
                with suppress(psycopg.OperationalError):  # (gone: the lock went with it)
                    self._run("SELECT pg_advisory_unlock(%s, %s)", keys)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

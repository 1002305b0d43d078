"""Users' exposure stamps on PostgreSQL (see ``application/exposure_holds.py``): table
``risk_exposure_stamps`` (owner, version) in the event store's schema, per-user advisory
locks, and what the event store checks in the transaction of a stamped append.

- A position is opened under its owner's **hold**: session advisory locks (the owner's
  bucket, shared, then the owner's own key) on a connection of this process's own, taken
  before its check and given back after its append. Holds of users sharing a bucket do not
  wait for each other. Its append moves the owner's stamp on (``bump``), in the append's
  own transaction, so a process killed after the append but before the unlock leaves the
  stamp moved on all the same.
- An engine's append of buys judged on a stamp waits for any hold of their owners (engine
  appends never wait for each other), then is refused (``EXPOSURE_CHANGED``) when a stamp
  moved on since it was read: the figures it judged on lack a position appended
  meanwhile. The wait is bounded: until the hold is ``WAIT_SECONDS`` old (its age read
  from the holder's session in ``pg_stat_activity``), then it is refused naming the users
  still held (``EXPOSURE_HELD``): the engine defers their bots alone. A hold found older
  than that is not waited for at all: the first append that meets a stuck hold is refused
  at once (it waited the whole bound before, 5 s of the worker's candle).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache, lru_cache
from typing import Any

import psycopg
from psycopg import sql

from application.settings import Database, _connect_kwargs, lock_ddl
from domain.errors import ExposureChangedError, ExposureHeldError

STAMPS = "risk_exposure_stamps"
CHANGED_MARK = "EXPOSURE_CHANGED"  # what a refused stamp makes PostgreSQL say (a failed cast)
WAIT_SECONDS = 5  # an engine append waits for a position's hold until it is this old
HOLD_WAIT_SECONDS = 10  # the longest a position waits for its owner's hold


# A hold is its owner's bucket (SLOTS keys, shared), then the owner's own key (exclusive).
# WHY buckets: an engine append locks what it was judged on, and advisory locks live in
# PostgreSQL's shared lock table (64 x max_connections slots by default): a heavy candle
# judging 10,000 users would fail "out of shared memory". An append tries one of each
# bucket's SLOTS keys exclusive, without waiting (one statement): a bucket it gets has no
# hold and takes none until the append's end. Only in a bucket a hold keeps does it take
# (and wait for) its owners' own keys, shared: a user held for long defers that user's bots,
# not their bucket's (an owner of a held bucket is still safe under their own key: a hold
# of theirs must have the bucket, then their key, before it judges). WHY shared in a hold:
# a hold kept for long (a live exchange that does not answer) made every position of its
# bucket's users wait 10 s and fail (38 users at 10,000). WHY SLOTS keys a bucket: two
# engine appends at once would otherwise miss each other's buckets and lock every user's
# own key (10,000 at 10,000 users): with SLOTS, the second takes the bucket's next key.
BUCKETS = 256
SLOTS = 4  # engine appends at once that still take a bucket each (a hold takes them all)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


@cache
def _space(kind: str, schema: str) -> int:
    """A first key: ``kind``'s locks in ``schema`` (hashed once: an append asks per owner)."""
    return _digest(f"tradetape:{kind}:{schema}") - 2 ** 31


@lru_cache(maxsize=1 << 16)  # (an append asks them of every user it judged, each candle)
def lock_keys(schema: str, owner: str) -> tuple[int, int]:
    """``owner``'s bucket in ``schema``: the schema's first key (a name space apart from
    the leases' worker locks, whose first key hashes another text) and the bucket's number.
    Its SLOTS keys: ``slot_keys``."""
    return _space("exposure-bucket", schema), _digest(owner) % BUCKETS


def slot_keys(bucket: tuple[int, int]) -> list[tuple[int, int]]:
    """The keys of a bucket (``lock_keys``): one per slot, in the order tried."""
    return [(bucket[0], bucket[1] * SLOTS + slot) for slot in range(SLOTS)]


def owner_keys(schema: str, owner: str) -> tuple[int, int]:
    """The two int4 keys of ``owner``'s own lock in ``schema`` (a name space of its own)."""
    return _space("exposure-owner", schema), _digest(owner) - 2 ** 31


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
        _wait_for_holds(curs, schema, owners)
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


_TRY_SHARED = ("SELECT k1, k2 FROM unnest(%s::int[], %s::int[]) AS k(k1, k2) "
               "WHERE NOT pg_try_advisory_xact_lock_shared(k1, k2)")


@cache
def _try_buckets(slots: int) -> str:
    """Buckets (k1, number) a statement found kept: none of their keys taken, tried in
    order without waiting (CASE evaluates no more of them than it needs)."""
    tries = " ".join(f"WHEN pg_try_advisory_xact_lock(k1, k2 * {slots} + {n}) THEN true"
                     for n in range(slots))
    return ("SELECT k1, k2 FROM unnest(%s::int[], %s::int[]) AS k(k1, k2) "
            f"WHERE NOT CASE {tries} ELSE false END")


def _key(row: Any) -> tuple[int, int]:
    """A row's (k1, k2), as the store's cursor gives rows (dicts) or as tuples."""
    return (row["k1"], row["k2"]) if isinstance(row, dict) else (row[0], row[1])


def _wait_for_holds(curs: Any, schema: str, owners: list[str]) -> None:
    """A key of each of ``owners``' buckets, exclusive, tried without waiting (one
    statement); in a bucket a hold keeps, the shared locks of its owners' own keys, waited
    for until the hold is ``WAIT_SECONDS`` old at most: else ``EXPOSURE_HELD`` naming the
    owners held. A hold already that old (``_hold_ages``) is not waited for at all."""
    buckets = {owner: lock_keys(schema, owner) for owner in owners}
    keys = sorted(set(buckets.values()))
    curs.execute(_try_buckets(SLOTS), ([k[0] for k in keys], [k[1] for k in keys]))
    kept = {_key(row) for row in curs.fetchall()}
    if not kept:
        return
    mine = {o: owner_keys(schema, o) for o in owners if buckets[o] in kept}
    keys = sorted(set(mine.values()))
    curs.execute(_TRY_SHARED, ([k[0] for k in keys], [k[1] for k in keys]))
    waited = sorted(_key(row) for row in curs.fetchall())
    if not waited:
        return
    ages = _hold_ages(curs, waited)
    stuck = [key for key in waited if ages.get(key, 0.0) >= WAIT_SECONDS]
    if stuck:  # (kept past the bound already: refused at once, the others stepped on)
        raise _held(sorted(o for o, key in mine.items() if key in stuck))
    left = WAIT_SECONDS - max(ages.values(), default=0.0)
    curs.execute(sql.SQL("SET LOCAL lock_timeout = '{}ms'").format(
        sql.SQL(str(max(1, math.ceil(left * 1000))))))
    try:
        curs.execute("SELECT pg_advisory_xact_lock_shared(k1, k2) FROM unnest("
                     "%s::int[], %s::int[]) AS k(k1, k2)",
                     ([k[0] for k in waited], [k[1] for k in waited]))
    except psycopg.errors.LockNotAvailable:
        raise _held(sorted(o for o, key in mine.items() if key in waited)) from None


def _held(owners: list[str]) -> ExposureHeldError:
    # Raised as ours: as the store's OperationalError, the append is tried 10 times
    return ExposureHeldError(
        f"the exposure hold of {', '.join(owners)} was kept elsewhere for over "
        f"{WAIT_SECONDS} s: nothing was written", owners)


# How long each hold of a key has been kept: since its holder's session (a process's hold
# connection, idle while the hold's work runs elsewhere: a live exchange's answer) last
# changed state, the statement that took the key. Unknown (its session busy, or not shown
# to this database user): none, waited for as before. (An advisory lock of two int4 keys
# is shown as classid, objid: their bits as oids.)
_AGES = ("SELECT k.k1, k.k2, max(extract(epoch FROM clock_timestamp() - a.state_change)) "
         "FROM unnest(%s::int[], %s::int[]) AS k(k1, k2) JOIN pg_locks l "
         "ON l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock' "
         "AND l.objsubid = 2 AND l.classid::bigint = (k.k1::bigint & 4294967295) "
         "AND l.objid::bigint = (k.k2::bigint & 4294967295) "
         "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
         "JOIN pg_stat_activity a ON a.pid = l.pid AND a.state = 'idle' "
         "GROUP BY k.k1, k.k2")


def _hold_ages(curs: Any, keys: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """Seconds each of ``keys``' holds has been kept, where known (``_AGES``)."""
    curs.execute(_AGES, ([k[0] for k in keys], [k[1] for k in keys]))
    ages = {}
    for row in curs.fetchall():
        values = list(row.values()) if isinstance(row, dict) else list(row)
        if values[2] is not None:
            ages[(values[0], values[1])] = float(values[2])
    return ages


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
        """``owner``'s hold while inside (``lock_not_available`` after HOLD_WAIT_SECONDS):
        their bucket's keys shared (a hold of another user of it does not wait), then
        their own key."""
        slots, own = slot_keys(lock_keys(self.schema, owner)), owner_keys(self.schema, owner)
        with self._lock:
            taken: list[tuple[int, int]] = []
            try:
                rows = self._run("SELECT k1, k2, pg_try_advisory_lock_shared(k1, k2) FROM "
                                 "unnest(%s::int[], %s::int[]) AS k(k1, k2)",
                                 ([k[0] for k in slots], [k[1] for k in slots]))
                taken += [(k1, k2) for k1, k2, ok in rows if ok]
                for key in slots:  # those an engine append has now: waited for, one by one
                    if key not in taken:  # (a session lock outlives a failed statement)
                        self._run("SELECT pg_advisory_lock_shared(%s, %s)", key)
                        taken.append(key)
                self._run("SELECT pg_advisory_lock(%s, %s)", own)
            except BaseException:
                self._unlock(None, taken)
                raise
            try:
                yield
            finally:
                self._unlock(own, taken)

    def _unlock(self, own: tuple[int, int] | None, shared: list[tuple[int, int]]) -> None:
        """Gives back the owner's own key (None: not taken) and the bucket's keys taken."""
        unlock_shared = ("(SELECT count(*) FROM unnest(%s::int[], %s::int[]) AS k(k1, k2) "
                         "WHERE pg_advisory_unlock_shared(k1, k2))")
        keys = ([k[0] for k in shared], [k[1] for k in shared])
        with suppress(psycopg.OperationalError):  # (gone: the locks went with it)
            if own is None:
                self._run(f"SELECT {unlock_shared}", keys)
            else:
                self._run(f"SELECT pg_advisory_unlock(%s, %s), {unlock_shared}", (*own, *keys))

    def held(self, owners: list[str]) -> set[str]:
        """Those of ``owners`` whose hold another process keeps now (asked without
        waiting: their own keys tried, and let go at once)."""
        if not owners:
            return set()
        keys = {o: owner_keys(self.schema, o) for o in owners}
        unique = sorted(set(keys.values()))
        with self._lock:
            rows = self._run("SELECT k1, k2, pg_try_advisory_lock_shared(k1, k2) FROM "
                             "unnest(%s::int[], %s::int[]) AS k(k1, k2)",
                             ([k[0] for k in unique], [k[1] for k in unique]))
            granted = [(k1, k2) for k1, k2, ok in rows if ok]
            if granted:
                self._run("SELECT pg_advisory_unlock_shared(k1, k2) FROM unnest("
                          "%s::int[], %s::int[]) AS k(k1, k2)",
                          ([k[0] for k in granted], [k[1] for k in granted]))
        kept = {(k1, k2) for k1, k2, ok in rows if not ok}
        return {o for o, key in keys.items() if key in kept}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

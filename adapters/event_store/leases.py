"""Engine leases on PostgreSQL (see ``application/leases.py``): tables ``engine_workers``
and ``engine_leases`` in the event store's schema, and the fence the event store checks in
the transaction of every fenced append.

A worker shows it is alive twice: its row's ``expires_at`` (renewed every tick) and a
session advisory lock held on its own connection. A process killed with -9 loses the
connection, so the database drops the lock at once and the others take its bots at their
next tick; a process that hangs keeps the lock but lets its leases expire. ``now()`` is the
database's: workers need no synchronised clocks.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from operator import attrgetter
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

from application.settings import Database, _connect_kwargs, lock_ddl
from domain.errors import LeaseLostError

log = logging.getLogger("tradetape.leases")
WORKERS, LEASES = "engine_workers", "engine_leases"
# Where every fencing token comes from: one sequence per schema, so that a token is never
# handed out twice, even for a lease row the reaper deleted and a later take made again
# (a per-row counter started again at 1, a token a dead worker might still present).
TOKENS = "engine_lease_tokens"
# A leave tried again after a transient error (a deadlock with another worker's take, a
# serialization failure, a lock wait timed out, the connection lost): given up, the leases
# are orphans the other workers adopt (not share out) and the worker row stays.
LEAVE_ATTEMPTS = 3
LEAVE_BACKOFF_SECONDS = 0.05
REAP_LIMIT = 1000  # rows of each table one reap deletes at most (the rest: at the next)
# The version of the rules processes of one schema keep together: the lease fence, the
# exposure holds' lock keys and what an engine append waits for (``exposure_stamps.py``).
# Raised whenever one changes so that a process of the old rules would not see a new
# one's (hold19's own keys, lock19's bucket name space). Every process publishes it in
# its deployment rows (``background_tasks.protocol``; a row without one is of code older
# than this: 0), and an engine worker that sees a live process of another version trades
# nothing (``PostgresLeases.protocols``, ``application/leases.py``).
PROTOCOL = 1


def _schema_key(schema: str) -> int:
    """The first half of this schema's advisory lock keys (the second: the worker number);
    schemas of one database (one per test) never share a worker's lock."""
    return int.from_bytes(hashlib.sha256(f"tradetape:leases:{schema}".encode()).digest()[:4],
                          "big") & 0x7FFFFFFF


def create_tables(conn: Any, schema: str) -> None:
    with conn.transaction():
        lock_ddl(conn, schema)
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (worker text PRIMARY KEY, number bigserial UNIQUE, "
            "expires_at timestamptz NOT NULL, ready boolean NOT NULL DEFAULT false)").format(
                sql.Identifier(schema, WORKERS)))
        if not conn.execute(  # a table made before workers said when they are ready
                "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s AND column_name = 'ready'", (schema, WORKERS)).fetchone():
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS ready boolean "
                                 "NOT NULL DEFAULT false").format(
                                     sql.Identifier(schema, WORKERS)))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (bot_id uuid PRIMARY KEY, worker text NOT NULL, "
            "token bigint NOT NULL, expires_at timestamptz NOT NULL)").format(
                sql.Identifier(schema, LEASES)))
        _create_tokens(conn, schema)


def _create_tokens(conn: Any, schema: str) -> None:
    """The token sequence, started past every token a lease row holds (a table made by a
    version that counted tokens per row)."""
    if conn.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = %s", (schema, TOKENS)).fetchone():
        return
    conn.execute(sql.SQL("CREATE SEQUENCE {}").format(sql.Identifier(schema, TOKENS)))
    conn.execute(sql.SQL("SELECT setval(%s, GREATEST(1, (SELECT max(token) FROM {})))").format(
        sql.Identifier(schema, LEASES)), (f'"{schema}"."{TOKENS}"',))


def _locked(schema: str, number_column: str) -> sql.Composable:
    """SQL: the session lock of the worker numbered ``number_column`` is held (its
    connection is open)."""
    return sql.SQL(
        "EXISTS (SELECT 1 FROM pg_locks lk WHERE lk.locktype = 'advisory' AND lk.granted "
        "AND lk.objsubid = 2 AND lk.classid::bigint = {key} AND lk.objid::bigint = {number} "
        "AND lk.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
        ).format(key=sql.Literal(_schema_key(schema)), number=sql.SQL(number_column))


def _alive(schema: str, worker_column: str) -> sql.Composable:
    """SQL: the worker named by ``worker_column`` is alive (row current, lock held)."""
    return sql.SQL(
        "EXISTS (SELECT 1 FROM {workers} lw JOIN pg_locks lk ON lk.locktype = 'advisory' "
        "AND lk.granted AND lk.objsubid = 2 AND lk.classid::bigint = {key} "
        "AND lk.objid::bigint = lw.number AND lk.database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) WHERE lw.worker = {column} "
        "AND lw.expires_at > now())").format(
            workers=sql.Identifier(schema, WORKERS), key=sql.Literal(_schema_key(schema)),
            column=sql.SQL(worker_column))


class PostgresLeases:
    """One engine worker's side of the lease table, on a connection of its own."""

    def __init__(self, database: Database, worker: str | None = None):
        self.schema = database.env.get("POSTGRES_SCHEMA") or "public"
        self.worker = worker or f"w-{uuid4().hex[:12]}"
        self.protocol = PROTOCOL
        self._ready = False  # said by ``ready``: its first take done, it trades
        self._kwargs = _connect_kwargs(database.env)
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # the manager's thread and refused appends share it
        self.workers = sql.Identifier(self.schema, WORKERS)
        self.leases = sql.Identifier(self.schema, LEASES)
        self.tokens = f'"{self.schema}"."{TOKENS}"'  # (nextval's regclass, as text)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(**self._kwargs, autocommit=True, connect_timeout=5)
            create_tables(self._conn, self.schema)
            row = self._conn.execute(sql.SQL(
                "INSERT INTO {} (worker, expires_at) VALUES (%s, now()) ON CONFLICT (worker) "
                "DO UPDATE SET expires_at = now() RETURNING number").format(self.workers),
                (self.worker,)).fetchone()
            self._conn.execute("SELECT pg_advisory_lock(%s, %s)",
                               (_schema_key(self.schema), int(row[0])))
        return self._conn

    def _run(self, statement: sql.Composable, params: tuple = ()) -> list[tuple]:
        return self._execute(statement, params,
                             lambda cursor: cursor.fetchall() if cursor.description else [])

    def _execute(self, statement: sql.Composable, params: tuple,
                 result: Callable[[psycopg.Cursor], Any]) -> Any:
        with self._lock:
            try:
                cursor = self._connection().execute(statement, params)
            except psycopg.OperationalError:
                self._drop()  # connection gone: the next call connects (and locks) again
                raise
            return result(cursor)

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def join(self, seconds: float) -> None:
        """Alive, not ready: no other worker gives it bots until it says ``ready``."""
        self._ready = False
        self._run(sql.SQL("UPDATE {} SET expires_at = now() + make_interval(secs => %s), "
                          "ready = false WHERE worker = %s").format(self.workers),
                  (seconds, self.worker))

    def ready(self) -> None:
        self._run(sql.SQL("UPDATE {} SET ready = true WHERE worker = %s").format(self.workers),
                  (self.worker,))
        self._ready = True

    def heartbeat(self, seconds: float) -> int:
        """Live workers that count in the shares: the ready ones and this one; while this
        one is not ready yet, every live one (workers that start together split the bots
        in their first takes instead of one taking them all)."""
        self._run(sql.SQL("UPDATE {} SET expires_at = now() + make_interval(secs => %s) "
                          "WHERE worker = %s").format(self.workers), (seconds, self.worker))
        (count,), = self._run(sql.SQL(
            "SELECT count(*) FROM {} x WHERE {} AND (x.ready OR x.worker = %s OR %s)").format(
                self.workers, _alive(self.schema, "x.worker")), (self.worker, not self._ready))
        return int(count)

    def extend(self, seconds: float) -> int:
        """Every lease of this worker extended, none read back (the renewal thread's: it
        has no use for them); returns how many. WHY: ``renew`` returned 10,000 rows a
        quarter lease at 10,000 bots, each bot id a ``UUID`` made in Python, only to be
        dropped (a tenth of the engine's processor time between heavy candles)."""
        statement = sql.SQL(
            "UPDATE {leases} l SET expires_at = now() + make_interval(secs => %s) FROM ("
            "SELECT bot_id FROM {leases} WHERE worker = %s ORDER BY bot_id "
            "FOR NO KEY UPDATE) o WHERE l.bot_id = o.bot_id").format(leases=self.leases)
        # in bot order, as ``renew`` and an append's fence lock them
        return self._execute(statement, (seconds, self.worker), attrgetter("rowcount"))

    def renew(self, seconds: float, fresh: float | None = None) -> dict[UUID, int]:
        """``fresh``: a lease with more than this many seconds still to run is returned but
        not rewritten (None: every one is)."""
        # The rows locked in bot order, as an append's fence locks them (check_fence):
        # in the table's order, a renewal and a fenced append each waited for a row the
        # other held (DeadlockDetected, one of them refused; seen at 10,000 bots)
        if fresh is None:
            rows = self._run(sql.SQL(
                "UPDATE {leases} l SET expires_at = now() + make_interval(secs => %s) FROM ("
                "SELECT bot_id FROM {leases} WHERE worker = %s ORDER BY bot_id "
                "FOR NO KEY UPDATE) o WHERE l.bot_id = o.bot_id "
                "RETURNING l.bot_id, l.token").format(leases=self.leases),
                (seconds, self.worker))
            return {bot_id: token for bot_id, token in rows}
        rows = self._run(sql.SQL(
            "WITH held AS (SELECT bot_id, token, expires_at FROM {leases} WHERE worker = %s "
            "ORDER BY bot_id FOR NO KEY UPDATE), renewed AS (UPDATE {leases} l "
            "SET expires_at = now() + make_interval(secs => %s) FROM held h "
            "WHERE l.bot_id = h.bot_id AND h.expires_at <= now() + make_interval(secs => %s)) "
            "SELECT bot_id, token FROM held").format(leases=self.leases),
            (self.worker, seconds, fresh))
        return {bot_id: token for bot_id, token in rows}

    def acquire(self, bot_ids: list[UUID], seconds: float) -> dict[UUID, int]:
        if not bot_ids:
            return {}
        rows = self._run(sql.SQL(
            "INSERT INTO {leases} AS l (bot_id, worker, token, expires_at) "
            "SELECT b, %s, nextval(%s), now() + make_interval(secs => %s) "
            "FROM unnest(%s::uuid[]) AS b ORDER BY b "
            "ON CONFLICT (bot_id) DO UPDATE SET worker = excluded.worker, "
            "token = GREATEST(excluded.token, l.token + 1), expires_at = excluded.expires_at "
            "WHERE l.expires_at <= now() OR NOT {alive} "
            "RETURNING bot_id, token").format(leases=self.leases,
                                              alive=_alive(self.schema, "l.worker")),
            (self.worker, self.tokens, seconds, sorted(bot_ids)))
        return {bot_id: token for bot_id, token in rows}

    def holders(self, bot_ids: list[UUID]) -> dict[UUID, str]:
        if not bot_ids:
            return {}
        rows = self._run(sql.SQL(
            "SELECT bot_id, worker FROM {} l WHERE bot_id = ANY(%s::uuid[]) "
            "AND l.expires_at > now() AND {}").format(
                self.leases, _alive(self.schema, "l.worker")), (list(bot_ids),))
        return dict(rows)

    def orphans(self, bot_ids: list[UUID]) -> set[UUID]:
        if not bot_ids:
            return set()
        rows = self._run(sql.SQL(
            "SELECT bot_id FROM {} l WHERE bot_id = ANY(%s::uuid[]) AND worker <> '' "
            "AND (l.expires_at <= now() OR NOT {})").format(
                self.leases, _alive(self.schema, "l.worker")), (list(bot_ids),))
        return {bot_id for (bot_id,) in rows}

    def reap(self, seconds: float, limit: int = REAP_LIMIT) -> tuple[int, int]:
        """Delete what no one can hold any more, at most ``limit`` rows of each table: the
        leases that ended ``seconds`` ago or more (given up, or their holder dead or hung:
        any worker could have taken them since; one still wanted is leased again with a
        new token), and the rows of workers whose row expired as long ago and whose
        session lock is not held (their process is gone: one that comes back connects
        again and makes a new row). WHY: a restart leaves its worker row behind, and a
        stopped or deleted bot its lease row, for good. Rows another worker has locked
        are skipped (never waited for), in bot order as every other lease statement locks
        them. Then both tables are vacuumed. Returns how many (leases, workers) were
        deleted."""
        leases = self._run(sql.SQL(
            "DELETE FROM {leases} l USING (SELECT bot_id FROM {leases} "
            "WHERE expires_at < now() - make_interval(secs => %s) ORDER BY bot_id LIMIT %s "
            "FOR UPDATE SKIP LOCKED) o WHERE l.bot_id = o.bot_id RETURNING 1").format(
                leases=self.leases), (seconds, limit))
        workers = self._run(sql.SQL(
            "DELETE FROM {workers} w USING (SELECT worker FROM {workers} x "
            "WHERE x.expires_at < now() - make_interval(secs => %s) AND NOT {locked} "
            "ORDER BY worker LIMIT %s FOR UPDATE SKIP LOCKED) o WHERE w.worker = o.worker "
            "RETURNING 1").format(workers=self.workers,
                                  locked=_locked(self.schema, "x.number")), (seconds, limit))
        # Their dead tuples too: a lease row is rewritten at every renewal (about eight
        # times a lease time), and where autovacuum is off or behind, the table grew without
        # end (the kill drill: 20 rows, 3,893 dead tuples, 2 MB after 6 minutes). Skipped
        # when another worker's vacuum runs; small tables: a few milliseconds.
        self._run(sql.SQL("VACUUM (SKIP_LOCKED) {}, {}").format(self.workers, self.leases))
        return len(leases), len(workers)

    def protocols(self, ttl_seconds: float) -> list[tuple[str, str, int]]:
        """The live processes of this schema (a deployment row reported within
        ``ttl_seconds``) whose protocol is not this one's (``protocol``): (process, role,
        protocol), a row without one (code older than this) as 0. Read as JSON so that a
        table made by older code, without the column, reads the same."""
        # the deployment rows' table, named where its rows are written (imported here:
        # task_board imports PROTOCOL from this module)
        from adapters.event_store.task_board import TABLE as DEPLOYMENT

        statement = sql.SQL(
            "SELECT DISTINCT t.process, t.role, coalesce((to_jsonb(t) ->> 'protocol')::int, 0) "
            "AS protocol FROM {} t WHERE t.reported_at >= now() - make_interval(secs => %s) "
            "AND coalesce((to_jsonb(t) ->> 'protocol')::int, 0) <> %s "
            "ORDER BY protocol, t.process").format(sql.Identifier(self.schema, DEPLOYMENT))

        def found(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
            if conn.execute("SELECT to_regclass(%s)", (
                    f'"{self.schema}"."{DEPLOYMENT}"',)).fetchone()[0] is None:
                return []  # (no process has published yet)
            return [tuple(row) for row in conn.execute(statement, (ttl_seconds, self.protocol))]

        with self._lock:
            try:
                return found(self._connection())
            except psycopg.OperationalError:
                self._drop()
                raise

    def release(self, bot_ids: list[UUID]) -> None:
        """Given away: no holder (``''``); the next owner's token is a higher one."""
        if bot_ids:
            self._run(self._give_up("AND bot_id = ANY(%s::uuid[])"),
                      (self.worker, sorted(bot_ids)))

    def _give_up(self, which: str) -> sql.Composable:
        """SQL: this worker's leases (``which`` of them) given up, their rows locked in bot
        order, as an acquire, a renewal and a fence lock them: a plain UPDATE locks them in
        the order its plan reads them (the table's, for a stop's), and a stop deadlocked
        with another worker's take of the same bots (one of them refused)."""
        return sql.SQL(
            "UPDATE {leases} l SET worker = '', expires_at = now() FROM ("
            "SELECT bot_id FROM {leases} WHERE worker = %s " + which + " ORDER BY bot_id "
            "FOR NO KEY UPDATE) o WHERE l.bot_id = o.bot_id").format(leases=self.leases)

    def leave(self) -> None:
        """Give every lease away and the worker row up, then close. Never raises (a server
        shutting down): a transient error is tried again (``LEAVE_ATTEMPTS``), any other
        one or the last is one log line. Either way the connection closes, and its session
        lock with it: the other workers see this one dead and adopt its bots at once."""
        try:
            for attempt in range(1, LEAVE_ATTEMPTS + 1):
                try:
                    self._run(self._give_up(""), (self.worker,))
                    self._run(sql.SQL("DELETE FROM {} WHERE worker = %s").format(
                        self.workers), (self.worker,))
                    return
                except psycopg.OperationalError as error:  # (_run closed the connection)
                    if attempt == LEAVE_ATTEMPTS:
                        _log_leave_failed(self.worker, attempt, error)
                        return
                    time.sleep(LEAVE_BACKOFF_SECONDS * attempt)  # (connects again)
                except psycopg.Error as error:  # not transient: trying again changes nothing
                    _log_leave_failed(self.worker, attempt, error)
                    return
        finally:
            with self._lock:
                self._drop()


def _log_leave_failed(worker: str, attempts: int, error: psycopg.Error) -> None:
    """One line: the error's class, SQLSTATE and first line (PostgreSQL's and libpq's
    messages name no password; the connection settings are not logged)."""
    first = (str(error).strip().splitlines() or [""])[0]
    log.warning("worker %s could not give its leases away (%d attempt(s)): %s %s: %.200s; "
                "other workers adopt its bots as orphans", worker, attempts,
                type(error).__name__, error.sqlstate or "-", first)


# What a refused fence makes PostgreSQL say: the marker cast to an integer fails.
LOST_MARK = "LEASE_LOST"


_BY_INT = attrgetter("int")


def check_fence(curs: Any, schema: str, fence: Any) -> None:
    """In the append's transaction: every bot of ``fence`` (``application.leases.Fence``:
    ``worker``, ``tokens`` by bot) still leased to its worker with the token it holds. The
    rows are share-locked until the append commits, so a worker taking one of these bots
    waits for it, then reads what it wrote.

    The statement fails by itself when a lease is lost (``LOST_MARK`` cast to an integer)
    and is never fetched, so it works the same in the store's append, where each statement
    is answered before the next, and in the library's pipelined one (the off switch, see
    ``ApplicationRecorder._append``). ``lost_leases`` names the bots afterwards."""
    if not fence.tokens:
        return
    # (the UUIDs' own order, by their integers: 6x cheaper than UUID.__lt__ for the 10,000
    # bots of a heavy candle, and in its transaction). The rows are locked in bot order
    # (ORDER BY, as a renewal locks them): in any other, the two deadlocked.
    bots = sorted(fence.tokens, key=_BY_INT)
    curs.execute(sql.SQL(
        "SELECT CAST(CASE WHEN count(*) = %s THEN '0' ELSE %s END AS integer) FROM ("
        "SELECT 1 FROM {} WHERE worker = %s AND (bot_id, token) IN ("
        "SELECT * FROM unnest(%s::uuid[], %s::bigint[])) ORDER BY bot_id FOR SHARE) AS held"
        ).format(
        sql.Identifier(schema, LEASES)),
        (len(bots), LOST_MARK, fence.worker, bots, [fence.tokens[b] for b in bots]))


def lost_leases(conn: Any, schema: str, fence: Any) -> LeaseLostError:
    """After a refused fence: which of its bots are no longer leased to it, as the error."""
    rows = conn.execute(sql.SQL(
        "SELECT bot_id, token FROM {} WHERE bot_id = ANY(%s::uuid[]) AND worker = %s").format(
        sql.Identifier(schema, LEASES)), (sorted(fence.tokens), fence.worker)).fetchall()
    found = {_uuid(row): _token(row) for row in rows}
    lost = sorted(b for b, token in fence.tokens.items() if found.get(b) != token)
    return LeaseLostError(f"worker {fence.worker} no longer holds the lease of "
                          f"{len(lost)} bot(s){f', e.g. {lost[0]}' if lost else ''}: "
                          "nothing was written", lost)


def _uuid(row: Any) -> UUID:
    value = row["bot_id"] if isinstance(row, dict) else row[0]
    return value if isinstance(value, UUID) else UUID(str(value))


def _token(row: Any) -> int:
    return int(row["token"] if isinstance(row, dict) else row[1])

"""The deployment's background tasks on PostgreSQL (see ``application/task_board.py``): the
table ``background_tasks`` in the event store's schema, one row per process and task, and
the session advisory lock that lets a task run on one process of the deployment at a time.

Operational data, not aggregate state: losing the rows hides reports until the processes
next publish. ``now()`` is the database's: processes need no synchronised clocks.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

import psycopg
from psycopg import sql

from adapters.event_store.leases import PROTOCOL
from application.settings import Database, _connect_kwargs, lock_ddl
from domain.errors import TurnLostError

# ``process`` below: ``application.task_board.Process`` (name, role, host, pid), not imported:
# adapters depend on no application module but its settings (the dependency rule).
TABLE = "background_tasks"
TRY_AGAIN_SECONDS = 5.0  # a process on standby asks for a task's lock at most this often


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _schema(database: Database) -> str:
    return database.env.get("POSTGRES_SCHEMA") or "public"


class _Connection:
    """One connection per process for all of it (the publications, ``/health``'s reads,
    every task's locks), opened on first use and again after it broke; one statement (or
    transaction) at a time under ``lock``. ``on_open``: what each user does on a new one
    (the table made; the locks forgotten: they went with the old one)."""

    def __init__(self, database: Database):
        self._kwargs = _connect_kwargs(database.env)
        self.on_open: list = []
        self._conn: psycopg.Connection | None = None
        self.lock = threading.Lock()

    def get(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            conn = psycopg.connect(**self._kwargs, autocommit=True, connect_timeout=5)
            try:
                for opened in self.on_open:
                    opened(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class PostgresTaskRows:
    """``application.task_board.TaskRows`` on PostgreSQL."""

    def __init__(self, database: Database):
        self.database, self.schema = database, _schema(database)
        self.table = sql.Identifier(self.schema, TABLE)
        self.protocol = PROTOCOL  # (published with every row)
        self._conn = _Connection(database)
        self._conn.on_open.append(self._create)

    def turns(self, task: str, **kwargs) -> PostgresTaskLock:
        """``task``'s turns in the deployment, on this board's connection."""
        return PostgresTaskLock(self.database, task, connection=self._conn, **kwargs)

    def _create(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            lock_ddl(conn, self.schema)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self.schema)))
            conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (process text NOT NULL, task text NOT NULL, "
                "role text NOT NULL, host text NOT NULL, pid integer NOT NULL, "
                "report jsonb NOT NULL, reported_at timestamptz NOT NULL, "
                "PRIMARY KEY (process, task))").format(self.table))
            # the version of the cross-process rules it keeps (``leases.PROTOCOL``): NULL
            # in the rows of code older than it
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS protocol integer"
                                 ).format(self.table))

    def _run(self, work):
        with self._conn.lock:
            try:
                return work(self._conn.get())
            except psycopg.OperationalError:  # (a broken connection: a new one next time)
                self._conn.close()
                raise

    def publish(self, process: Any, reports: dict[str, dict[str, Any]],
                ttl_seconds: float) -> None:
        def work(conn: psycopg.Connection) -> None:
            with conn.transaction():
                conn.execute(sql.SQL("DELETE FROM {} WHERE process = %s AND NOT "
                                     "(task = ANY(%s))").format(self.table),
                             (process.name, list(reports)))
                with conn.cursor() as cursor:
                    cursor.executemany(sql.SQL(
                        "INSERT INTO {} (process, task, role, host, pid, report, reported_at, "
                        "protocol) VALUES (%s, %s, %s, %s, %s, %s::jsonb, now(), %s) "
                        "ON CONFLICT (process, task) DO UPDATE SET report = EXCLUDED.report, "
                        "reported_at = EXCLUDED.reported_at, protocol = EXCLUDED.protocol"
                        ).format(self.table),
                        [(process.name, task, process.role, process.host, process.pid,
                          json.dumps(report), self.protocol)
                         for task, report in sorted(reports.items())])
                conn.execute(sql.SQL("DELETE FROM {} WHERE reported_at < now() - "
                                     "make_interval(secs => %s)").format(self.table),
                             (ttl_seconds,))
        self._run(work)

    def rows(self, ttl_seconds: float) -> list[dict[str, Any]]:
        def work(conn: psycopg.Connection) -> list[tuple]:
            return conn.execute(sql.SQL(
                "SELECT task, process, role, host, pid, reported_at, report FROM {} "
                "WHERE reported_at >= now() - make_interval(secs => %s) "
                "ORDER BY task, process").format(self.table), (ttl_seconds,)).fetchall()
        found = []
        for task, process, role, host, pid, reported_at, report in self._run(work):
            found.append({"task": task, "process": process, "role": role, "host": host,
                          "pid": pid, "reported_at": reported_at.isoformat(), **report})
        return found

    def forget(self, process: Any) -> None:
        self._run(lambda conn: conn.execute(
            sql.SQL("DELETE FROM {} WHERE process = %s").format(self.table), (process.name,)))

    def close(self) -> None:
        with self._conn.lock:
            self._conn.close()


class PostgresTaskLock:
    """A task's turn in the deployment: session advisory locks (keyed by schema, task and,
    for a task shared out by name, the name: a reconciliation's account) on a connection
    of its own. The process whose connection holds a turn runs it; a process killed loses
    its connection, the database drops its locks, and the next process that asks takes
    them over."""

    def __init__(self, database: Database, task: str, *, connection: _Connection | None = None,
                 try_again: float = TRY_AGAIN_SECONDS, clock=time.monotonic):
        """``connection``: shared with the process's board (``PostgresTaskRows.turns``);
        None: one of its own."""
        self.schema_key, self.task = _key(f"tradetape:tasks:{_schema(database)}"), task
        self.keys = self._pair("")  # the whole task's (``held``)
        self._mine: set[str] = set()  # the turns this connection holds
        self._own = connection is None
        self._conn = _Connection(database) if connection is None else connection
        self._conn.on_open.append(lambda _: self._mine.clear())
        self._tried_at: float | None = None
        self.try_again, self._clock = try_again, clock

    def _pair(self, name: str) -> tuple[int, int]:
        return self.schema_key, _key(f"{self.task}:{name}" if name else self.task)

    def held(self) -> bool:
        """Whether this process runs the whole task now: it holds its turn (the connection
        checked alive) or has just taken it. On standby it asks again at most every
        ``try_again`` seconds."""
        with self._conn.lock:
            if "" not in self._mine:
                now = self._clock()
                if self._tried_at is not None and now - self._tried_at < self.try_again:
                    return False
                self._tried_at = now
            return "" in self._turns({""}, keep=True)

    def confirm(self) -> None:
        """Raise ``TurnLostError`` unless this process still holds the whole task's turn,
        its connection checked alive (a round trip): what a task that writes does before
        each write (the billing sweep, per subscription). A turn lost is not taken again
        here: the task's next round asks (``held``)."""
        with self._conn.lock:
            try:
                conn = self._conn.get()  # (a new one forgets the turns: ``on_open``)
                if "" in self._mine:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:  # (its locks went with it)
                self._mine.clear()
                self._conn.close()
        raise TurnLostError(f"this process no longer holds the {self.task} task's turn")

    def mine(self, names: set[str]) -> set[str]:
        """Of ``names`` (a reconciliation's accounts this process trades), the ones this
        process runs now: those it holds and those free, taken now; the turns it held of
        names no longer asked for are given back."""
        with self._conn.lock:
            return self._turns(set(names), keep=False)

    def _turns(self, names: set[str], *, keep: bool) -> set[str]:
        try:
            conn = self._conn.get()
            if self._mine & names:
                conn.execute("SELECT 1")  # (a connection lost: its locks with it)
            for name in sorted(set() if keep else self._mine - names):
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", self._pair(name))
                self._mine.discard(name)
            for name in sorted(names - self._mine):
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                self._pair(name)).fetchone()[0]:
                    self._mine.add(name)
            return self._mine & names
        except psycopg.OperationalError:
            self._mine.clear()
            self._conn.close()
            raise

    def release(self) -> None:
        """Let go (at a graceful stop): other processes take the turns at once."""
        with self._conn.lock:
            try:
                if self._mine:  # (said, not left to the connection's end: the server
                    self._turns(set(), keep=False)  # drops a closed one's locks later)
                if self._own:
                    self._conn.close()
            except psycopg.Error:  # the connection gone: its locks with it
                self._conn.close()
            finally:
                self._mine.clear()

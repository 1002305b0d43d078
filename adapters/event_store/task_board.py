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

from application.settings import Database, _connect_kwargs, lock_ddl
from application.task_board import Process

TABLE = "background_tasks"
TRY_AGAIN_SECONDS = 5.0  # a process on standby asks for a task's lock at most this often


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _schema(database: Database) -> str:
    return database.env.get("POSTGRES_SCHEMA") or "public"


class _Connection:
    """A connection of its own, opened on first use and again after it broke; one
    statement at a time (the publishing thread and ``/health``'s share it)."""

    def __init__(self, database: Database, on_open=None):
        self._kwargs = _connect_kwargs(database.env)
        self._on_open = on_open
        self._conn: psycopg.Connection | None = None
        self.lock = threading.Lock()

    def get(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = psycopg.connect(**self._kwargs, autocommit=True, connect_timeout=5)
            if self._on_open is not None:
                self._on_open(self._conn)
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
        self.schema = _schema(database)
        self.table = sql.Identifier(self.schema, TABLE)
        self._conn = _Connection(database, on_open=self._create)

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

    def _run(self, work):
        with self._conn.lock:
            try:
                return work(self._conn.get())
            except psycopg.OperationalError:  # (a broken connection: a new one next time)
                self._conn.close()
                raise

    def publish(self, process: Process, reports: dict[str, dict[str, Any]],
                ttl_seconds: float) -> None:
        def work(conn: psycopg.Connection) -> None:
            with conn.transaction():
                conn.execute(sql.SQL("DELETE FROM {} WHERE process = %s AND NOT "
                                     "(task = ANY(%s))").format(self.table),
                             (process.name, list(reports)))
                with conn.cursor() as cursor:
                    cursor.executemany(sql.SQL(
                        "INSERT INTO {} (process, task, role, host, pid, report, reported_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s::jsonb, now()) "
                        "ON CONFLICT (process, task) DO UPDATE SET report = EXCLUDED.report, "
                        "reported_at = EXCLUDED.reported_at").format(self.table),
                        [(process.name, task, process.role, process.host, process.pid,
                          json.dumps(report)) for task, report in sorted(reports.items())])
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

    def forget(self, process: Process) -> None:
        self._run(lambda conn: conn.execute(
            sql.SQL("DELETE FROM {} WHERE process = %s").format(self.table), (process.name,)))

    def close(self) -> None:
        with self._conn.lock:
            self._conn.close()


class PostgresTaskLock:
    """One task's turn in the deployment: a session advisory lock (keyed by schema and
    task) on a connection of its own. The process whose connection holds it runs the task;
    a process killed loses its connection, the database drops the lock, and the next
    process that asks takes it over."""

    def __init__(self, database: Database, task: str, *,
                 try_again: float = TRY_AGAIN_SECONDS, clock=time.monotonic):
        schema = _schema(database)
        self.keys = (_key(f"tradetape:tasks:{schema}"), _key(task))
        self._conn = _Connection(database)
        self._held, self._tried_at = False, None
        self.try_again, self._clock = try_again, clock

    def held(self) -> bool:
        """Whether this process runs the task now: it holds the lock (its connection
        checked alive) or has just taken it. A process on standby asks again at most every
        ``try_again`` seconds."""
        with self._conn.lock:
            try:
                if self._held:
                    self._conn.get().execute("SELECT 1")
                    return True
                now = self._clock()
                if self._tried_at is not None and now - self._tried_at < self.try_again:
                    return False
                self._tried_at = now
                self._held = bool(self._conn.get().execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", self.keys).fetchone()[0])
                return self._held
            except psycopg.OperationalError:  # the connection, and with it the lock, lost
                self._held = False
                self._conn.close()
                raise

    def release(self) -> None:
        """Let go (at a graceful stop): another process takes the task at once."""
        with self._conn.lock:
            self._held = False
            self._conn.close()

"""Small two-column tables kept beside the event log, in the same database, for what must NOT
be in the log (data keys) or must be deletable (the email index).

``memory`` keeps them in process dicts; ``sqlite:///PATH`` in the same file as the events
(``secure_delete`` on, so a deleted key's bytes are overwritten in the file, and ``scrub``
checkpoints and truncates the write-ahead log that still holds them); PostgreSQL in the
store URL's schema. Deleting a row does not reach backups or, on PostgreSQL, dead tuples
until VACUUM: operators must keep that in mind for erasure.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

from application.settings import Database, _connect_kwargs, lock_ddl

_SCRUB_ATTEMPTS = 50


class KeyValueTable(ABC):
    """``key -> value``, both text; ``value`` unique when asked for."""

    @abstractmethod
    def insert(self, key: str, value: str) -> bool:
        """False, changing nothing, when ``key`` (or a unique ``value``) is already there."""

    @abstractmethod
    def get(self, key: str) -> str | None: ...

    @abstractmethod
    def replace(self, key: str, old: str, new: str) -> bool:
        """Set ``key`` to ``new`` if it still holds ``old`` (compare and set)."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def delete_value(self, value: str) -> None: ...

    @abstractmethod
    def items(self) -> list[tuple[str, str]]: ...

    @abstractmethod
    def clear(self) -> None: ...


class Tables(ABC):
    @abstractmethod
    def table(self, name: str, key: str, value: str, *, unique_value: bool = False
              ) -> KeyValueTable: ...

    def close(self) -> None:  # noqa: B027 - nothing to release in memory
        """Release connections; the tables are unusable afterwards."""

    def scrub(self) -> bool:
        """After deleting or replacing a secret value: make sure its old bytes are gone from
        the database files (SQLite: the write-ahead log). True when that could be done."""
        return True


def open_tables(database: Database) -> Tables:
    """Tables in the store ``database`` names (the caller has ``prepare``\\ d it)."""
    if database.kind == "memory":
        return MemoryTables()
    if database.kind == "sqlite":
        return SqlTables(_SqliteConnection(str(database.sqlite_path)))
    return SqlTables(_PostgresConnection(database.env))


# --- memory ---------------------------------------------------------------------------------


class _MemoryTable(KeyValueTable):
    def __init__(self, unique_value: bool):
        self.rows: dict[str, str] = {}
        self.unique_value = unique_value
        self.lock = threading.Lock()

    def insert(self, key: str, value: str) -> bool:
        with self.lock:
            if key in self.rows or (self.unique_value and value in self.rows.values()):
                return False
            self.rows[key] = value
            return True

    def get(self, key: str) -> str | None:
        return self.rows.get(key)

    def replace(self, key: str, old: str, new: str) -> bool:
        with self.lock:
            if self.rows.get(key) != old:
                return False
            self.rows[key] = new
            return True

    def delete(self, key: str) -> None:
        with self.lock:
            self.rows.pop(key, None)

    def delete_value(self, value: str) -> None:
        with self.lock:
            self.rows = {k: v for k, v in self.rows.items() if v != value}

    def items(self) -> list[tuple[str, str]]:
        return sorted(self.rows.items())

    def clear(self) -> None:
        with self.lock:
            self.rows = {}


class MemoryTables(Tables):
    def __init__(self) -> None:
        self._tables: dict[str, _MemoryTable] = {}

    def table(self, name: str, key: str, value: str, *, unique_value: bool = False
              ) -> KeyValueTable:
        return self._tables.setdefault(name, _MemoryTable(unique_value))


# --- SQL --------------------------------------------------------------------------------------


class _Connection(ABC):
    placeholder = "?"

    @abstractmethod
    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Execute one statement in its own transaction; rows if it returns any."""

    def create(self, ddl: str) -> None:
        """Run a ``CREATE ... IF NOT EXISTS`` that other processes may run at the same time."""
        self.run(ddl)

    @abstractmethod
    def qualified(self, name: str) -> str: ...

    @abstractmethod
    def close(self) -> None: ...

    def scrub(self) -> bool:
        """PostgreSQL: a deleted row stays as a dead tuple until VACUUM, and in the server's
        WAL and base backups; see the README ("Keys and rotation")."""
        return True


class _SqliteConnection(_Connection):
    def __init__(self, path: str):
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=10, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA secure_delete = ON")

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def qualified(self, name: str) -> str:
        return f'"{name}"'

    def close(self) -> None:
        self._conn.close()

    def scrub(self) -> bool:
        """``secure_delete`` zeroes a deleted row in its page, but the pages written before
        (the row itself) stay in the write-ahead log until a checkpoint copies the log into
        the file and truncates it. Another connection in the middle of a read holds the log
        back: retried for a while (its transactions are short)."""
        for attempt in range(_SCRUB_ATTEMPTS):
            with self._lock:
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            time.sleep(0.01 * (attempt + 1))
        return False


class _PostgresConnection(_Connection):
    placeholder = "%s"

    def __init__(self, env: dict[str, str]):
        self._kwargs = _connect_kwargs(env)
        self._schema = env.get("POSTGRES_SCHEMA", "public")
        self._lock = threading.Lock()
        self._conn: Any = None

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self._connected().execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def _connected(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(**self._kwargs, autocommit=True, connect_timeout=10)
        return self._conn

    def create(self, ddl: str) -> None:
        """Under the DDL lock: ``IF NOT EXISTS`` alone fails against a concurrent creator."""
        with self._lock:
            conn = self._connected()
            with conn.transaction():
                lock_ddl(conn, self._schema)
                conn.execute(ddl)

    def qualified(self, name: str) -> str:
        return f'"{self._schema}"."{name}"'

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


class _SqlTable(KeyValueTable):
    def __init__(self, conn: _Connection, name: str, key: str, value: str, unique_value: bool):
        for word in (name, key, value):  # identifiers are ours, but never interpolate junk
            if not word.replace("_", "").isalnum():
                raise ValueError(f"bad identifier {word!r}")
        self.conn, p = conn, conn.placeholder
        table = conn.qualified(name)
        unique = " UNIQUE" if unique_value else ""
        conn.create(f"CREATE TABLE IF NOT EXISTS {table} "
                    f"({key} TEXT PRIMARY KEY, {value} TEXT NOT NULL{unique})")
        self.sql = {
            "insert": f"INSERT INTO {table} ({key}, {value}) VALUES ({p}, {p}) "
                      "ON CONFLICT DO NOTHING RETURNING 1",
            "get": f"SELECT {value} FROM {table} WHERE {key} = {p}",
            "replace": f"UPDATE {table} SET {value} = {p} WHERE {key} = {p} AND {value} = {p} "
                       "RETURNING 1",
            "delete": f"DELETE FROM {table} WHERE {key} = {p}",
            "delete_value": f"DELETE FROM {table} WHERE {value} = {p}",
            "items": f"SELECT {key}, {value} FROM {table} ORDER BY {key}",
            "clear": f"DELETE FROM {table}",
        }

    def insert(self, key: str, value: str) -> bool:
        return bool(self.conn.run(self.sql["insert"], (key, value)))

    def get(self, key: str) -> str | None:
        rows = self.conn.run(self.sql["get"], (key,))
        return rows[0][0] if rows else None

    def replace(self, key: str, old: str, new: str) -> bool:
        return bool(self.conn.run(self.sql["replace"], (new, key, old)))

    def delete(self, key: str) -> None:
        self.conn.run(self.sql["delete"], (key,))

    def delete_value(self, value: str) -> None:
        self.conn.run(self.sql["delete_value"], (value,))

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.conn.run(self.sql["items"])]

    def clear(self) -> None:
        self.conn.run(self.sql["clear"])


class SqlTables(Tables):
    def __init__(self, conn: _Connection):
        self._conn = conn

    def table(self, name: str, key: str, value: str, *, unique_value: bool = False
              ) -> KeyValueTable:
        return _SqlTable(self._conn, name, key, value, unique_value)

    def close(self) -> None:
        self._conn.close()

    def scrub(self) -> bool:
        return self._conn.scrub()

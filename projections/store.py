"""Where views live: a SQLite file of their own beside the event store's
(``Database.views_path``), the event store's PostgreSQL schema, or, for the ``memory``
store, an in-process SQLite database owned by the caller.

One SQL dialect for both (``?`` placeholders, ``ON CONFLICT`` upserts); PostgreSQL inserts
new rows with COPY. Every projection has a row in ``projection_tracking``: its position in
the log, the generation of its tables (bumped by each rebuild) and the shape they were made
for. A batch's rows and its new position are written in one transaction that first moves the
tracking row from the position the batch started at; any other position or generation
(another writer, a rebuild swapped in) refuses the commit and rolls everything back.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from application.settings import Database, _connect_kwargs, lock_ddl
from projections.shadow_indexes import build_side_by_side
from projections.tables import SQL_TYPES, Frozen, Row, Table, schema_hash

TRACKING = "projection_tracking"
SOURCE = "views_source"  # in a SQLite views file: the event log its views were made from
SHADOW = "__rebuild"
log = logging.getLogger(__name__)


class ProjectionConflict(IntegrityError):
    """The tracking row was not where this writer left it: nothing of the batch was kept."""


class DuplicateKey(Exception):
    """A table's primary key, built after its rows were loaded (``ViewStore.key_statements``),
    found two rows of one key: ``table`` names it, ``detail`` says which key."""

    def __init__(self, table: str, detail: str):
        super().__init__(f"{table}: {detail}")
        self.table, self.detail = table, detail


@dataclass(frozen=True)
class TrackingRow:
    name: str
    application_name: str
    position: int
    generation: int
    schema_hash: str
    updated_at: str | None


class ViewStore(ABC):
    kind: str
    can_clone = True
    # Whether a rebuild may make its shadow tables without their primary key and build it
    # once they are filled (``key_statements``): SQLite cannot add a key to a table.
    KEYS_AFTER_LOAD = False
    TEXT_COLLATION = ""  # of every text column of a view table made here (none: the default)
    # Called before a projection reads its tables, so batches still being committed by a
    # writer thread are visible (set by the runner while it runs).
    before_select: Callable[[], None] | None = None

    def clone(self) -> ViewStore:
        """Another connection to the same views (e.g. for a writer thread)."""
        raise NotImplementedError

    # --- dialect --------------------------------------------------------------------------

    @abstractmethod
    def q(self, name: str) -> str:
        """The qualified, quoted table name."""

    def sql(self, text: str) -> str:
        return text

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Any]: ...

    @abstractmethod
    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple]: ...

    @contextmanager
    def consistent_reads(self) -> Iterator[None]:
        """The queries made inside see one snapshot of the store (SQLite's one writer is
        this process, which does not write meanwhile: nothing more is needed there)."""
        yield

    @abstractmethod
    def table_exists(self, name: str) -> bool: ...

    @abstractmethod
    def index_exists(self, name: str) -> bool: ...

    @abstractmethod
    def try_lock(self, name: str) -> bool:
        """Own ``name`` (e.g. a projection) until :meth:`close`; False if someone else does."""

    @abstractmethod
    def unlock(self, name: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def execute(self, cur: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return cur.execute(self.sql(text), params)

    def insert_rows(self, cur: Any, table: Table, name: str, rows: list[tuple]) -> None:
        cols = ", ".join(table.column_names)
        marks = ", ".join("?" * len(table.columns))
        cur.executemany(self.sql(f"INSERT INTO {self.q(name)} ({cols}) VALUES ({marks})"), rows)

    # --- tables ---------------------------------------------------------------------------

    def create_table(self, cur: Any, table: Table, suffix: str, generation: int,
                     indexes: bool = True, key: bool = True) -> None:
        """A fresh table (dropped first). Constraint and index names carry the generation:
        a rebuilt table is renamed into place, and its names must not clash with the old.
        ``key`` False: without its primary key, to be added by ``key_statements`` (only
        where ``KEYS_AFTER_LOAD``)."""
        name = table.name + suffix
        self.execute(cur, f"DROP TABLE IF EXISTS {self.q(name)}")
        ddl = table.ddl(self.TEXT_COLLATION, key=key).replace(
            "PRIMARY KEY", f"CONSTRAINT {self._pk(table, generation)} PRIMARY KEY")
        self.execute(cur, f"CREATE TABLE {self.q(name)} ({ddl}){self.storage(table)}")
        if indexes:
            self.create_indexes(cur, table, suffix, generation)

    def storage(self, table: Table) -> str:
        """A ``CREATE TABLE``'s storage parameters for ``table`` (PostgreSQL's fillfactor;
        SQLite has none)."""
        return ""

    @staticmethod
    def _pk(table: Table, generation: int) -> str:
        return f"pk_{table.name}_g{generation}"

    def key_statements(self, table: Table, suffix: str, generation: int) -> tuple[str, str]:
        """The primary key of a table made without it, in two steps: its unique index
        (built beside the secondary indexes: a ``CREATE INDEX`` does not lock the others
        out, where ``ADD PRIMARY KEY`` would), then that index made the key (no scan: the
        key's columns are ``NOT NULL`` already). The names are ``create_table``'s."""
        pk, name = self._pk(table, generation), self.q(table.name + suffix)
        return (f"CREATE UNIQUE INDEX {self.bare(pk)} ON {name} ({', '.join(table.key)})",
                f"ALTER TABLE {name} ADD CONSTRAINT {self.bare(pk)} PRIMARY KEY "
                f"USING INDEX {self.bare(pk)}")

    def add_key(self, cur: Any, table: Table, suffix: str, generation: int) -> None:
        """Build the primary key of a table made without it, in the caller's transaction
        (a ``DuplicateKey`` if two of its rows have one key)."""
        with self._duplicates(table.name + suffix):
            for text in self.key_statements(table, suffix, generation):
                self.execute(cur, text)

    @contextmanager
    def _duplicates(self, name: str) -> Iterator[None]:
        yield  # (only where ``KEYS_AFTER_LOAD``)

    def duplicate(self, error: Exception) -> DuplicateKey | None:
        """``error`` as a ``DuplicateKey`` if a write failed on two rows of one key (a
        rebuild's shadow table: ``Projector``'s batches name it), else None."""
        return None


    def create_indexes(self, cur: Any, table: Table, suffix: str, generation: int) -> None:
        for text in self.index_statements(table, suffix, generation):
            self.execute(cur, text)

    def index_statements(self, table: Table, suffix: str, generation: int) -> list[str]:
        """The ``CREATE INDEX`` of each of the table's secondary indexes."""
        statements = []
        partial = dict(table.partial)
        for cols in table.indexes:
            index = f"ix_{table.name}_{'_'.join(cols)}_g{generation}"[:63]
            where = f" WHERE {partial[cols]}" if cols in partial else ""
            statements.append(f"CREATE INDEX {self.bare(index)} ON "
                              f"{self.q(table.name + suffix)} ({', '.join(cols)}){where}")
        if table.open_rows:
            statements.append(self.open_index_statement(table, suffix, generation))
        return statements

    @staticmethod
    def open_index_name(table: Table, generation: int) -> str:
        return f"ox_{table.name}_g{generation}"[:63]

    def open_index_statement(self, table: Table, suffix: str, generation: int,
                             if_missing: str = "") -> str:
        """The index of the rows a start reads back (``Table.open_rows``)."""
        index = self.open_index_name(table, generation)
        return (f"CREATE INDEX {if_missing}{self.bare(index)} ON {self.q(table.name + suffix)} "
                f"({', '.join(table.key)}) WHERE {table.open_rows}")

    def index_filled(self, tables: Sequence[tuple[Table, str, int]],
                     keyless: frozenset[str] = frozenset()) -> None:
        """Build the secondary indexes of filled tables ((table, suffix, generation) each:
        a rebuild's shadows), and the primary keys of those named in ``keyless`` (made
        without: a ``DuplicateKey`` if their rows hold two of one key), in one transaction."""
        with self.transaction() as cur:
            for table, suffix, generation in tables:
                if table.name in keyless:
                    self.add_key(cur, table, suffix, generation)
                self.create_indexes(cur, table, suffix, generation)

    def lock_ddl(self, cur: Any) -> None:  # noqa: B027 - SQLite needs nothing more
        """Keep other processes from creating tables until this transaction ends
        (``CREATE TABLE IF NOT EXISTS`` alone fails against a concurrent creator on
        PostgreSQL). A SQLite transaction already holds the one write lock."""

    @abstractmethod
    def relax(self, cur: Any) -> None:
        """Let this transaction commit without waiting for its flush to disk. A crash can
        then lose the last commits, each whole (rows and tracking together): those batches
        are simply applied again."""

    def write(self, cur: Any, changes: list[Frozen], suffix: str = "") -> None:
        for change in changes:
            table, name = change.table, change.table.name + suffix
            if change.gone:
                where = " AND ".join(f"{k} = ?" for k in table.key)
                cur.executemany(self.sql(f"DELETE FROM {self.q(name)} WHERE {where}"),
                                change.gone)
            if change.inserts:
                self.insert_rows(cur, table, name, change.inserts)
            if change.upserts:
                self.upsert_rows(cur, table, name, change.upserts)
            for columns, values in change.patches:  # rare: corrections of past rows
                sets = ", ".join(f"{c} = ?" for c in columns)
                where = " AND ".join(f"{k} = ?" for k in table.key)
                self.execute(cur, f"UPDATE {self.q(name)} SET {sets} WHERE {where}", values)

    def upsert_rows(self, cur: Any, table: Table, name: str, rows: list[tuple]) -> None:
        """Rows that may replace rows of the same key (no two with one key)."""
        cur.executemany(self.sql(self._upsert(table, name)), rows)

    def _upsert(self, table: Table, name: str, source: str = "") -> str:
        """The upsert of one row (``VALUES``), or of every row ``source`` selects."""
        cols = table.column_names
        others = [c for c in cols if c not in table.key]
        action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
                  if others else "DO NOTHING")
        rows = source or f"VALUES ({', '.join('?' * len(cols))})"
        return (f"INSERT INTO {self.q(name)} ({', '.join(cols)}) {rows} "
                f"ON CONFLICT ({', '.join(table.key)}) {action}")

    def select(self, table: Table, where: str = "", params: Sequence[Any] = (),
               suffix: str = "", order: str = "", limit: int | None = None,
               planned_each_time: bool = False) -> list[Row]:
        """``planned_each_time``: never run from a plan made for other values
        (:meth:`query_unprepared`)."""
        if self.before_select is not None:
            self.before_select()
        text = f"SELECT {', '.join(table.column_names)} FROM {self.q(table.name + suffix)}"
        text += f" WHERE {where}" if where else ""
        text += f" ORDER BY {order}" if order else ""
        text += f" LIMIT {int(limit)}" if limit is not None else ""
        read = self.query_unprepared if planned_each_time else self.query
        return [table.from_db(values) for values in read(text, params)]

    def query_unprepared(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        """As :meth:`query`, planned for these values each time (PostgreSQL: not a
        prepared statement, whose plan is reused after five runs whatever the values)."""
        return self.query(text, params)

    # --- tracking -------------------------------------------------------------------------

    def ensure_tracking(self) -> None:
        with self.transaction() as cur:
            self.lock_ddl(cur)
            self.execute(cur, f"CREATE TABLE IF NOT EXISTS {self.q(TRACKING)} ("
                         "name TEXT PRIMARY KEY, application_name TEXT NOT NULL, "
                         "position BIGINT NOT NULL, generation BIGINT NOT NULL, "
                         "schema_hash TEXT NOT NULL, updated_at TEXT)")

    def tracking(self) -> dict[str, TrackingRow]:
        if not self.table_exists(TRACKING):
            return {}
        rows = self.query(f"SELECT name, application_name, position, generation, schema_hash, "
                          f"updated_at FROM {self.q(TRACKING)}")
        return {row[0]: TrackingRow(*row) for row in rows}

    def register(self, name: str, application_name: str, tables: Sequence[Table],
                 schema: str) -> None:
        """Empty tables and a tracking row at position 0, unless the projection has them."""
        self.ensure_tracking()
        with self.transaction() as cur:
            self.execute(cur, f"INSERT INTO {self.q(TRACKING)} VALUES (?, ?, 0, 1, ?, ?) "
                         "ON CONFLICT (name) DO NOTHING", (name, application_name, schema, now()))
            if cur.rowcount == 1:
                for table in tables:
                    self.create_table(cur, table, "", 1)
                return
        self.add_open_indexes(name, tables)

    def add_open_indexes(self, name: str, tables: Sequence[Table]) -> None:
        """Tables made before their ``open_rows`` was declared get its index (the current
        generation's name, as a rebuild would make it), where a rebuild would write every
        row again. An access path only: one that cannot be made now is made next time."""
        tables = [t for t in tables if t.open_rows]
        if not tables:
            return
        row = self.tracking().get(name)
        if row is None:
            return
        for table in tables:
            if self.index_exists(self.open_index_name(table, row.generation)):
                continue  # (the common case: asked, not made, which would lock the table)
            text = self.open_index_statement(table, "", row.generation, "IF NOT EXISTS ")
            try:
                with self.transaction() as cur:
                    self.bound_lock_wait(cur)
                    self.execute(cur, text)
            except Exception as error:  # (a lock held, another process making it now)
                log.info("index of %s's open rows not made now: %s", table.name,
                         type(error).__name__)

    def bound_lock_wait(self, cur: Any) -> None:  # noqa: B027 - SQLite needs nothing
        """Bounds how long a start's change of an existing table (an index, a storage
        parameter) waits for a lock in ``cur``'s transaction: put off to the next start
        rather than holding the start up behind another process's batch."""

    def advance(self, cur: Any, name: str, generation: int, start: int, end: int) -> None:
        self.execute(cur, f"UPDATE {self.q(TRACKING)} SET position = ?, updated_at = ? "
                     "WHERE name = ? AND generation = ? AND position = ?",
                     (end, now(), name, generation, start))
        if cur.rowcount != 1:
            raise ProjectionConflict(
                f"projection {name} is no longer at position {start} of generation "
                f"{generation}: another process wrote it or a rebuild replaced it")

    def swap(self, cur: Any, name: str, tables: Sequence[Table], position: int,
             schema: str) -> None:
        """Replace a projection's tables by their rebuilt shadows, in the caller's
        transaction: the tracking row first (it orders this after any running batch)."""
        self.execute(cur, f"UPDATE {self.q(TRACKING)} SET position = ?, "
                     "generation = generation + 1, schema_hash = ?, updated_at = ? "
                     "WHERE name = ?", (position, schema, now(), name))
        for table in tables:
            self.execute(cur, f"DROP TABLE IF EXISTS {self.q(table.name)}")
            self.execute(cur, f"ALTER TABLE {self.q(table.name + SHADOW)} "
                         f"RENAME TO {self.bare(table.name)}")

    def bare(self, name: str) -> str:
        return f'"{name}"'


def now() -> str:
    """Wall-clock time of a tracking commit: operational information, never a view row."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class SQLiteViewStore(ViewStore):
    kind = "sqlite"

    def __init__(self, path: str | Path | None):
        """``path=None``: a private in-memory database (the ``memory`` event store's views)."""
        self.path = None if path is None else Path(path)
        target = ":memory:" if path is None else str(path)
        self.conn = sqlite3.connect(target, isolation_level=None, timeout=60,
                                    check_same_thread=False)
        if path is not None:
            self.conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode a commit without fsync is still atomic: a power cut can only lose
            # whole recent batches, rows and tracking together, which are then applied again.
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self._locks: dict[str, int] = {}

    def relax(self, cur: Any) -> None:
        """Already so: the connection runs with ``synchronous=NORMAL`` in WAL mode."""

    def duplicate(self, error: Exception) -> DuplicateKey | None:
        """SQLite says ``UNIQUE constraint failed: <table>.<column>, ...``."""
        text = str(error)
        if not (isinstance(error, sqlite3.IntegrityError)
                and text.startswith(_SQLITE_UNIQUE)):
            return None
        columns = [c.strip() for c in text.removeprefix(_SQLITE_UNIQUE).split(",")]
        table = columns[0].rpartition(".")[0] or "a table"
        return DuplicateKey(table, "two rows of one key: "
                            + ", ".join(c.rpartition(".")[2] for c in columns))

    @property
    def can_clone(self) -> bool:  # type: ignore[override]
        return self.path is not None

    def clone(self) -> SQLiteViewStore:
        return SQLiteViewStore(self.path)

    def q(self, name: str) -> str:
        return f'"{name}"'

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")  # the write lock now: no stale read inside
        try:
            yield cur
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(row) for row in self.conn.execute(text, params).fetchall()]

    def table_exists(self, name: str) -> bool:
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          (name,))
        return bool(rows)

    def index_exists(self, name: str) -> bool:
        rows = self.query("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                          (name,))
        return bool(rows)

    def try_lock(self, name: str) -> bool:
        if self.path is None:
            return True  # an in-memory store has one owner: the object holding it
        folder = Path(f"{self.path}.locks")
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._locks[name] = fd
        return True

    def unlock(self, name: str) -> None:
        fd = self._locks.pop(name, None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases its flock

    def close(self) -> None:
        for name in list(self._locks):
            self.unlock(name)
        self.conn.close()

    def made_from(self, events: Path) -> None:
        """Views kept from another event file (this one deleted and made anew beside them)
        are dropped, to be followed afresh: their positions point into a log that is gone.
        The log's first event names it (kept in ``SOURCE``); an empty log names none."""
        first = first_event(events)
        if self._source() == first:
            return  # the usual case: no write lock taken
        with self.transaction():  # another process may be doing the same: once
            kept = self._source()
            if kept != first and self.table_exists(SOURCE):
                for (name,) in self.query("SELECT name FROM sqlite_master WHERE type = 'table'"):
                    self.conn.execute(f"DROP TABLE {self.q(name)}")
            if first is not None and kept != first:
                self.conn.execute(f"CREATE TABLE {self.q(SOURCE)} (first_event TEXT NOT NULL)")
                self.conn.execute(f"INSERT INTO {self.q(SOURCE)} VALUES (?)", (first,))

    def _source(self) -> str | None:
        if not self.table_exists(SOURCE):
            return None
        rows = self.query(f"SELECT first_event FROM {self.q(SOURCE)}")
        return rows[0][0] if rows else None


def first_event(events: Path) -> str | None:
    """``originator id/version`` of the first event stored in a SQLite event file (None: no
    file, or no event in it yet)."""
    if not events.is_file():
        return None
    conn = sqlite3.connect(events, timeout=60)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'stored_events'").fetchone():
            return None
        row = conn.execute("SELECT originator_id, originator_version FROM stored_events "
                           "ORDER BY rowid LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else f"{row[0]}/{row[1]}"


_PG_COPY_TYPES = {"text": "text", "int": "int8", "money": "text"}
# Upserts of this many rows or more go through a staging table (fewer: one statement each,
# cheaper than the staging table's two statements).
STAGE_FROM = 64


class PostgresViewStore(ViewStore):
    kind = "postgres"
    # A key built after loading cost the backend less than keeping it up to date row by
    # row: see ``projections/runner.py`` (``Projector.create_shadow``).
    KEYS_AFTER_LOAD = True
    # Text compared byte by byte (as SQLite's BINARY does; the same order as a C.UTF-8
    # database's default for any UTF-8 text): with a libc collation, even C.UTF-8,
    # PostgreSQL compares text through strcoll and sorts without abbreviated keys. A
    # rebuild's secondary indexes, built at its end with nothing else running, took
    # 0.49 / 0.51 s of the backend's processor against 0.72 / 0.69 s (the 180,057-event
    # bench log's tables, alternated; ``scripts/bench_pg_writes.py --collation``). Not in
    # the schema's hash: a table made before keeps the default collation, and a column of
    # the default collation compared with one of "C" is compared as "C".
    TEXT_COLLATION = '"C"'

    def __init__(self, env: dict[str, str], conn: Any = None):
        """``conn``: an open autocommit connection to read through (a pool's, which the pool
        closes), else one of its own."""
        import psycopg

        self.env = env
        self.schema = env.get("POSTGRES_SCHEMA") or "public"
        self.conn = conn or psycopg.connect(**_connect_kwargs(env), autocommit=True)
        self._lock_conn: Any = None

    def clone(self) -> PostgresViewStore:
        return PostgresViewStore(self.env)

    def q(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    @property
    def channel(self) -> str:
        """Where a projection's batch says it committed (NOTIFY, in its transaction): the
        api processes that wait for the views are woken by it instead of polling."""
        return f"tradetape_views_{self.schema}"[:63]  # PostgreSQL's longest name

    def advance(self, cur: Any, name: str, generation: int, start: int, end: int) -> None:
        super().advance(cur, name, generation, start, end)
        cur.execute(f'NOTIFY "{self.channel}"')

    def storage(self, table: Table) -> str:
        return f" WITH (fillfactor = {table.fillfactor})" if table.fillfactor else ""

    def bound_lock_wait(self, cur: Any) -> None:
        cur.execute("SET LOCAL lock_timeout = '2s'")

    def register(self, name: str, application_name: str, tables: Sequence[Table],
                 schema: str) -> None:
        """As :meth:`ViewStore.register`; a table made before its ``fillfactor`` was
        declared gets it (pages written from then on are filled so; its rows stay), where
        a rebuild would write every row again. Storage only: when a lock keeps it from
        being set now (a ``VACUUM`` running), the next start sets it."""
        super().register(name, application_name, tables, schema)
        wanted = {t.name: t.fillfactor for t in tables if t.fillfactor}
        if not wanted:
            return
        rows = self.query("SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n "
                          "ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ANY(?)",
                          (self.schema, list(wanted)))
        import psycopg

        for relname, options in rows:
            if f"fillfactor={wanted[relname]}" in (options or ()):
                continue
            try:
                with self.transaction() as cur:
                    self.bound_lock_wait(cur)
                    cur.execute(f"ALTER TABLE {self.q(relname)} "
                                f"SET (fillfactor = {wanted[relname]})")
            except psycopg.errors.LockNotAvailable:
                log.info("fillfactor of %s not set now: the table is locked", relname)

    def swap(self, cur: Any, name: str, tables: Sequence[Table], position: int,
             schema: str) -> None:
        """A rebuild's new generation says so too: the api keeps its read version while
        it hears nothing (``api/graphql/change_watch.py``)."""
        super().swap(cur, name, tables, position, schema)
        cur.execute(f'NOTIFY "{self.channel}"')

    def relax(self, cur: Any) -> None:
        cur.execute("SET LOCAL synchronous_commit TO OFF")

    def lock_ddl(self, cur: Any) -> None:
        lock_ddl(cur, self.schema)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    @contextmanager
    def consistent_reads(self) -> Iterator[None]:
        """One REPEATABLE READ transaction: another process's commits meanwhile are not
        seen halfway (tables read after a tracking row hold what that row says)."""
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(self.sql(text), params)
            return cur.fetchall()

    def query_unprepared(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(self.sql(text), params, prepare=False)
            return cur.fetchall()

    def query_binary(self, text: str, params: Sequence[Any] = ()) -> list[tuple]:
        """``query`` in PostgreSQL's binary format: the log's pages (stored states as raw
        bytes instead of hex text both ends must convert; measured 1.8x the rows/s)."""
        with self.conn.cursor(binary=True) as cur:
            cur.execute(self.sql(text), params)
            return cur.fetchall()

    def index_filled(self, tables: Sequence[tuple[Table, str, int]],
                     keyless: frozenset[str] = frozenset()) -> None:
        """Two connections side by side (``projections/shadow_indexes.py``); the keys of
        ``keyless`` tables built there as unique indexes, then made keys in one
        transaction."""
        keys = [(table.name + suffix, self.key_statements(table, suffix, generation))
                for table, suffix, generation in tables if table.name in keyless]
        statements = [(name, text) for name, (text, _) in keys]
        statements += [(table.name + suffix, text) for table, suffix, generation in tables
                       for text in self.index_statements(table, suffix, generation)]
        import psycopg

        try:
            build_side_by_side(self, statements)
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateKey(_violated(error), _detail(error)) from error
        if keys:
            with self.transaction() as cur:
                for _, (_, attach) in keys:
                    cur.execute(attach)

    @contextmanager
    def _duplicates(self, name: str) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateKey(name, _detail(error)) from error

    def duplicate(self, error: Exception) -> DuplicateKey | None:
        import psycopg

        if not isinstance(error, psycopg.errors.UniqueViolation):
            return None
        return DuplicateKey(error.diag.table_name or "a table", _detail(error))

    def write(self, cur: Any, changes: list[Frozen], suffix: str = "") -> None:
        """As :meth:`ViewStore.write`, in few round trips: the deletes and the small
        inserts of every table in one pipeline, then each ``COPY`` (a pipeline cannot hold
        one), then the upserts and patches in another pipeline. Each table's changes keep
        their order (deletes, inserts, upserts, patches); tables do not depend on each
        other. A statement and its answer one at a time cost the writer thread a wake-up
        and the GIL back each, some 80 a batch of ten projections: see ``writer.py``."""
        first: list[Callable[[], Any]] = []
        copies: list[Callable[[], Any]] = []
        last: list[Callable[[], Any]] = []
        for change in changes:
            table, name = change.table, change.table.name + suffix
            if change.gone:
                first.append(partial(self.delete_rows, cur, table, name, change.gone))
            if change.inserts:
                if len(change.inserts) < STAGE_FROM:
                    first.append(partial(ViewStore.insert_rows, self, cur, table, name,
                                         change.inserts))
                else:
                    copies.append(partial(self._copy, cur, table, self.q(name),
                                          change.inserts))
            if change.upserts:
                if len(change.upserts) < STAGE_FROM:
                    last.append(partial(ViewStore.upsert_rows, self, cur, table, name,
                                        change.upserts))
                else:
                    stage = self._stage(table, name)
                    first.append(partial(cur.execute, stage[0]))
                    copies.append(partial(self._copy, cur, table, stage[1], change.upserts))
                    last.append(partial(cur.execute, stage[2]))
            for columns, values in change.patches:  # rare: corrections of past rows
                sets = ", ".join(f"{c} = %s" for c in columns)
                where = " AND ".join(f"{k} = %s" for k in table.key)
                last.append(partial(cur.execute,
                                    f"UPDATE {self.q(name)} SET {sets} WHERE {where}", values))
        self._pipelined(cur, first)
        for copy in copies:
            copy()
        self._pipelined(cur, last)

    @staticmethod
    def _pipelined(cur: Any, statements: list[Callable[[], Any]]) -> None:
        if len(statements) == 1:
            statements[0]()
        elif statements:
            with cur.connection.pipeline():
                for statement in statements:
                    statement()

    def insert_rows(self, cur: Any, table: Table, name: str, rows: list[tuple]) -> None:
        self._copy(cur, table, self.q(name), rows)

    def delete_rows(self, cur: Any, table: Table, name: str, keys: list[tuple]) -> None:
        """Rows removed by key: from ``STAGE_FROM`` keys in one statement, the keys sent as
        one array per key column (a take-profit wave at 10,000 bots removes ~40,000 rows
        from eight tables, its open orders and deals closed: a statement per row cost the
        writer thread's Python and the backend a bind and an execute each)."""
        where = " AND ".join(f"{k} = %s" for k in table.key)
        if len(keys) < STAGE_FROM:
            cur.executemany(f"DELETE FROM {self.q(name)} WHERE {where}", keys)
            return
        kinds = dict(table.columns)
        arrays = [f"%s::{SQL_TYPES[kinds[k]].lower()}[]" for k in table.key]
        if len(table.key) == 1:
            text = f"DELETE FROM {self.q(name)} WHERE {table.key[0]} = ANY({arrays[0]})"
        else:
            gone = ", ".join(f"g{i}" for i in range(len(table.key)))
            match = " AND ".join(f"t.{k} = g.g{i}" for i, k in enumerate(table.key))
            text = (f"DELETE FROM {self.q(name)} AS t USING unnest({', '.join(arrays)}) "
                    f"AS g({gone}) WHERE {match}")
        cur.execute(text, [list(column) for column in zip(*keys, strict=True)])

    def upsert_rows(self, cur: Any, table: Table, name: str, rows: list[tuple]) -> None:
        """Many rows: COPY into a temporary table, then one set-based upsert from it (an
        upsert statement per row cost 150 µs a row: 6 of a rebuild's 33 s were equity
        points)."""
        if len(rows) < STAGE_FROM:
            super().upsert_rows(cur, table, name, rows)
            return
        make, stage, upsert = self._stage(table, name)
        cur.execute(make)
        self._copy(cur, table, stage, rows)
        cur.execute(upsert)

    def _stage(self, table: Table, name: str) -> tuple[str, str, str]:
        """The staged upsert's statements: make the temporary table (if not made yet in
        this session), its name (to ``COPY`` into), and the upsert from it."""
        stage = self.bare(f"stage_{table.name}_{schema_hash([table])[:8]}")
        return (f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {self.q(name)}) "
                "ON COMMIT DELETE ROWS", stage,
                self._upsert(table, name,
                             f"SELECT {', '.join(table.column_names)} FROM {stage}"))

    @staticmethod
    def _copy(cur: Any, table: Table, target: str, rows: list[tuple]) -> None:
        with cur.copy(f"COPY {target} ({', '.join(table.column_names)}) "
                      "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_PG_COPY_TYPES[kind] for _, kind in table.columns])
            for row in rows:
                copy.write_row(row)

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_tables WHERE schemaname = ? AND "
                               "tablename = ?", (self.schema, name)))

    def index_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_indexes WHERE schemaname = ? AND "
                               "indexname = ?", (self.schema, name)))

    def try_lock(self, name: str) -> bool:
        """A session advisory lock on a connection held until :meth:`close`: it is released
        by PostgreSQL itself when the process dies."""
        import psycopg

        if self._lock_conn is None:
            self._lock_conn = psycopg.connect(**_connect_kwargs(self.env), autocommit=True)
        row = self._lock_conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._key(name),)
        ).fetchone()
        return bool(row[0])

    def unlock(self, name: str) -> None:
        if self._lock_conn is not None:
            self._lock_conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                                    (self._key(name),))

    def _key(self, name: str) -> str:
        return f"tradetape:{self.schema}:{name}"

    def close(self) -> None:
        if self._lock_conn is not None:
            self._lock_conn.close()
        self.conn.close()


_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def _violated(error: Any) -> str:
    """The table a failed ``CREATE UNIQUE INDEX`` was building on (psycopg's diagnostics)."""
    return error.diag.table_name or error.diag.constraint_name or "a table"


def _detail(error: Any) -> str:
    return (error.diag.message_detail or str(error)).strip()


def open_view_store(database: Database) -> ViewStore:
    if database.kind == "postgres":
        return PostgresViewStore(database.env)
    if database.kind == "sqlite":
        # Their own file (``Database.views_path``): a batch of the projections never holds
        # the event store's write lock, so an append never waits for one.
        store = SQLiteViewStore(database.views_path)
        store.made_from(database.sqlite_path)
        return store
    return SQLiteViewStore(None)

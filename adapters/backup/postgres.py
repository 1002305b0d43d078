"""Backups of a PostgreSQL schema: read in one ``REPEATABLE READ READ ONLY`` transaction
(one snapshot for every table; the event store's appends take an EXCLUSIVE lock, which
does not wait for readers, so trading goes on), restored in one transaction that locks the
tables, copies the rows in and sets each ``bigserial`` past the restored positions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from adapters.backup.catalog import KEPT_TABLES, KeptTable
from adapters.backup.values import converter, portable, postgres_kind
from application.settings import Database, _connect_kwargs
from domain.backup import (
    BackupStore,
    Column,
    RestoreWriter,
    SnapshotReader,
    TableShape,
)


class _PostgresTables:
    def __init__(self, conn: Any, schema: str):
        self.conn, self.schema = conn, schema

    def q(self, table: TableShape | KeptTable) -> str:
        from psycopg import sql

        kept = table if isinstance(table, KeptTable) else _kept(table)
        return sql.Identifier(self.schema, kept.postgres).as_string(self.conn)

    def shapes(self) -> list[TableShape]:
        rows = self.conn.execute(
            "SELECT table_name, column_name, data_type, coalesce(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = %s "
            "ORDER BY table_name, ordinal_position", (self.schema,)).fetchall()
        columns: dict[str, list[Column]] = {}
        self.serial: dict[str, list[str]] = {}
        for table, column, data_type, default in rows:
            columns.setdefault(table, []).append(Column(column, postgres_kind(data_type)))
            if default.startswith("nextval("):
                self.serial.setdefault(table, []).append(column)
        return [TableShape(k.name, k.role, tuple(columns[k.postgres]), k.position,
                           k.application) for k in KEPT_TABLES if k.postgres in columns]


def _kept(table: TableShape) -> KeptTable:
    return next(k for k in KEPT_TABLES if k.name == table.name)


def _ident(conn: Any, name: str) -> str:
    from psycopg import sql

    return sql.Identifier(name).as_string(conn)


class _Reader(SnapshotReader):
    def __init__(self, conn: Any, schema: str):
        self.conn, self.meta = conn, _PostgresTables(conn, schema)

    def tables(self) -> list[TableShape]:
        return self.meta.shapes()

    def rows(self, table: TableShape, batch: int) -> Iterator[Sequence[tuple]]:
        names = ", ".join(_ident(self.conn, c.name) for c in table.columns)
        order = _ident(self.conn, table.position) if table.position else names
        # A server-side cursor: a large log streams through in batches.
        with self.conn.cursor(name=f"backup_{table.name}") as cursor:
            cursor.itersize = batch
            cursor.execute(f"SELECT {names} FROM {self.meta.q(table)} ORDER BY {order}")
            # Only uuid, time, numeric, json... need changing: int, text and bytea do not.
            mixed = [i for i, c in enumerate(table.columns)
                     if c.kind not in ("int", "text", "bytes", "real", "bool")]
            while rows := cursor.fetchmany(batch):
                yield rows if not mixed else [_portable_row(row, mixed) for row in rows]


def _portable_row(row: tuple, mixed: list[int]) -> tuple:
    values = list(row)
    for i in mixed:
        values[i] = portable(values[i])
    return tuple(values)


class _Writer(RestoreWriter):
    def __init__(self, conn: Any, schema: str):
        self.conn, self.meta = conn, _PostgresTables(conn, schema)
        self._tables = {shape.name: shape for shape in self.meta.shapes()}
        for shape in self._tables.values():  # no other writer until the commit
            conn.execute(f"LOCK TABLE {self.meta.q(shape)} IN ACCESS EXCLUSIVE MODE")

    def tables(self) -> dict[str, TableShape]:
        return dict(self._tables)

    def count(self, table: TableShape) -> int:
        return self.conn.execute(f"SELECT COUNT(*) FROM {self.meta.q(table)}").fetchone()[0]

    def insert(self, table: TableShape, source: Sequence[Column],
               rows: Sequence[Sequence[object]]) -> None:
        kinds = {c.name: c.kind for c in table.columns}
        convert = [converter(c.kind, kinds[c.name], sqlite=False) for c in source]
        names = ", ".join(_ident(self.conn, c.name) for c in source)
        with self.conn.cursor().copy(f"COPY {self.meta.q(table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([f(v) for f, v in zip(convert, row, strict=True)])

    def finish(self) -> None:
        for shape in self._tables.values():
            for column in self.meta.serial.get(_kept(shape).postgres, []):
                self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                    f"(SELECT max({_ident(self.conn, column)}) FROM {self.meta.q(shape)})) "
                    f"WHERE EXISTS (SELECT 1 FROM {self.meta.q(shape)})",
                    (self.meta.q(shape), column))


class PostgresBackupStore(BackupStore):
    kind = "postgres"

    def __init__(self, database: Database, prepare: Callable[[], None] | None = None):
        self.env, self.display, self._prepare = database.env, database.display, prepare
        self.schema = database.env.get("POSTGRES_SCHEMA") or "public"

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(**_connect_kwargs(self.env), connect_timeout=10)

    @contextmanager
    def read(self) -> Iterator[SnapshotReader]:
        import psycopg

        with self._connect() as conn:
            # Set before the first statement: psycopg begins the transaction with them.
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                yield _Reader(conn, self.schema)
            finally:
                conn.rollback()

    @contextmanager
    def write(self) -> Iterator[RestoreWriter]:
        if self._prepare is not None:
            self._prepare()
        with self._connect() as conn:  # commits when the block ends, rolls back on error
            conn.execute("SET LOCAL lock_timeout = '10s'")
            yield _Writer(conn, self.schema)

"""Backups of a SQLite file: read in one read transaction (the file is in WAL mode, so
writers carry on and the reader sees the file as it was at its first read), restored in
one write transaction with each event's notification id written as its ``rowid``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from adapters.backup.catalog import KEPT_TABLES, KeptTable
from adapters.backup.values import converter, sqlite_kind
from domain.backup import (
    BackupError,
    BackupStore,
    Column,
    RestoreWriter,
    SnapshotReader,
    TableShape,
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _SqliteTables:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def shapes(self) -> list[TableShape]:
        found = {row[0] for row in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        return [self._shape(kept) for kept in KEPT_TABLES if kept.sqlite in found]

    def _shape(self, kept: KeptTable) -> TableShape:
        info = self.conn.execute(f"PRAGMA table_info({_q(kept.sqlite)})").fetchall()
        columns = [Column(row[1], sqlite_kind(row[2])) for row in info]
        if kept.position and kept.position not in {c.name for c in columns}:
            columns.insert(0, Column(kept.position, "int"))  # the rowid is the position
        return TableShape(kept.name, kept.role, tuple(columns), kept.position,
                          kept.application)

    def names(self, table: TableShape, columns: Sequence[Column]) -> list[str]:
        """``columns`` as SQL, the position as ``rowid`` where it is not a declared column."""
        declared = {row[1] for row in self.conn.execute(
            f"PRAGMA table_info({_q(_kept(table).sqlite)})")}
        return ["rowid" if c.name == table.position and c.name not in declared
                else _q(c.name) for c in columns]


def _kept(table: TableShape) -> KeptTable:
    return next(k for k in KEPT_TABLES if k.name == table.name)


class _Reader(SnapshotReader):
    def __init__(self, conn: sqlite3.Connection):
        self.conn, self.meta = conn, _SqliteTables(conn)

    def tables(self) -> list[TableShape]:
        return self.meta.shapes()

    def rows(self, table: TableShape, batch: int) -> Iterator[Sequence[tuple]]:
        names = self.meta.names(table, table.columns)
        order = names[[c.name for c in table.columns].index(table.position)] \
            if table.position else ", ".join(names)
        cursor = self.conn.execute(f"SELECT {', '.join(names)} FROM "
                                   f"{_q(_kept(table).sqlite)} ORDER BY {order}")
        # sqlite3 gives int, float, str, bytes or None: portable as they are.
        while rows := cursor.fetchmany(batch):
            yield rows


class _Writer(RestoreWriter):
    def __init__(self, conn: sqlite3.Connection):
        self.conn, self.meta = conn, _SqliteTables(conn)

    def tables(self) -> dict[str, TableShape]:
        return {shape.name: shape for shape in self.meta.shapes()}

    def count(self, table: TableShape) -> int:
        return self.conn.execute(f"SELECT COUNT(*) FROM {_q(_kept(table).sqlite)}").fetchone()[0]

    def insert(self, table: TableShape, source: Sequence[Column],
               rows: Sequence[Sequence[object]]) -> None:
        kinds = {c.name: c.kind for c in table.columns}
        names = self.meta.names(table, source)
        convert = [converter(c.kind, kinds[c.name], sqlite=True) for c in source]
        marks = ", ".join("?" * len(source))
        self.conn.executemany(
            f"INSERT INTO {_q(_kept(table).sqlite)} ({', '.join(names)}) VALUES ({marks})",
            ([f(v) for f, v in zip(convert, row, strict=True)] for row in rows))

    def finish(self) -> None:
        """Nothing: SQLite gives the next row ``max(rowid) + 1``."""


class SqliteBackupStore(BackupStore):
    kind = "sqlite"

    def __init__(self, path: Path, prepare: Callable[[], None] | None = None):
        self.path, self.display, self._prepare = path, f"sqlite:///{path}", prepare

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")  # as the event store opens it
        return conn

    @contextmanager
    def read(self) -> Iterator[SnapshotReader]:
        if not self.path.is_file():  # a mistyped path must not back up a new, empty file
            raise BackupError(f"no database file at {self.path}", code="NOTHING_TO_BACK_UP")
        conn = self._connect()
        try:
            conn.execute("BEGIN")  # deferred: the snapshot is taken at the first read
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            yield _Reader(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[RestoreWriter]:
        if self._prepare is not None:
            self._prepare()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock now: no writer meanwhile
            try:
                yield _Writer(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

"""Backups of a SQLite file: read in one read transaction (the file is in WAL mode, so
writers carry on and the reader sees the file as it was at its first read), restored in
one write transaction with each event's notification id written as its ``rowid``.

The witness (the audit chain) is a read model: it lives in the views' own file, attached
to the same connection and read first, so the chain kept never goes past the log kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from adapters.backup.catalog import KEPT_TABLES, WITNESS, KeptTable
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


VIEWS = "views"  # the schema name of the attached views file


class _SqliteTables:
    def __init__(self, conn: sqlite3.Connection, views: bool = False):
        """``views``: the views' file is attached (as ``VIEWS``): witnesses are read there."""
        self.conn, self.views = conn, views

    def shapes(self) -> list[TableShape]:
        found = {row[0] for row in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if self.views:
            found |= {row[0] for row in self.conn.execute(
                f"SELECT name FROM {VIEWS}.sqlite_master WHERE type = 'table'")}
        return [self._shape(kept) for kept in KEPT_TABLES if kept.sqlite in found]

    def where(self, kept: KeptTable) -> str:
        """The table's qualified name: a witness in the views' file when it is attached (a
        copy an earlier version left in the event file is no longer kept up to date)."""
        return f"{VIEWS}.{_q(kept.sqlite)}" if self.views and kept.role == WITNESS \
            else _q(kept.sqlite)

    def info(self, kept: KeptTable) -> list[tuple]:
        schema = f"{VIEWS}." if self.views and kept.role == WITNESS else ""
        return self.conn.execute(f"PRAGMA {schema}table_info({_q(kept.sqlite)})").fetchall()

    def _shape(self, kept: KeptTable) -> TableShape:
        info = self.info(kept)
        columns = [Column(row[1], sqlite_kind(row[2])) for row in info]
        if kept.position and kept.position not in {c.name for c in columns}:
            columns.insert(0, Column(kept.position, "int"))  # the rowid is the position
        return TableShape(kept.name, kept.role, tuple(columns), kept.position,
                          kept.application)

    def names(self, table: TableShape, columns: Sequence[Column]) -> list[str]:
        """``columns`` as SQL, the position as ``rowid`` where it is not a declared column."""
        declared = {row[1] for row in self.info(_kept(table))}
        return ["rowid" if c.name == table.position and c.name not in declared
                else _q(c.name) for c in columns]


def _kept(table: TableShape) -> KeptTable:
    return next(k for k in KEPT_TABLES if k.name == table.name)


class _Reader(SnapshotReader):
    def __init__(self, conn: sqlite3.Connection, views: bool):
        self.conn, self.meta = conn, _SqliteTables(conn, views)

    def tables(self) -> list[TableShape]:
        return self.meta.shapes()

    def rows(self, table: TableShape, batch: int) -> Iterator[Sequence[tuple]]:
        names = self.meta.names(table, table.columns)
        order = names[[c.name for c in table.columns].index(table.position)] \
            if table.position else ", ".join(names)
        cursor = self.conn.execute(f"SELECT {', '.join(names)} FROM "
                                   f"{self.meta.where(_kept(table))} ORDER BY {order}")
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

    def __init__(self, path: Path, prepare: Callable[[], None] | None = None,
                 views_path: Path | None = None):
        """``views_path``: the read models' file beside it, where the witness is read."""
        self.path, self.display, self._prepare = path, f"sqlite:///{path}", prepare
        self.views_path = views_path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")  # as the event store opens it
        return conn

    @contextmanager
    def read(self) -> Iterator[SnapshotReader]:
        if not self.path.is_file():  # a mistyped path must not back up a new, empty file
            raise BackupError(f"no database file at {self.path}", code="NOTHING_TO_BACK_UP")
        conn = self._connect()
        views = self.views_path is not None and self.views_path.is_file()
        try:
            if views:
                conn.execute(f"ATTACH DATABASE ? AS {VIEWS}", (str(self.views_path),))
            conn.execute("BEGIN")  # deferred: each file's snapshot is taken at its first read
            if views:  # the views first: their audit chain can only lag the log read after
                conn.execute(f"SELECT COUNT(*) FROM {VIEWS}.sqlite_master").fetchone()
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            yield _Reader(conn, views)
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

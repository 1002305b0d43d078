"""The backup ports: a store read at one position, and an empty store written into.

Column kinds are portable names (``int``, ``text``, ``bytes``, ``uuid``, ``time``, ``real``,
``bool``, ``decimal``, ``json``, ``any``), so a table read from SQLite can be written into
PostgreSQL and back; each adapter maps them to and from its own types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from domain.errors import DomainError


class BackupError(DomainError):
    """A backup that cannot be made, read, trusted or restored; ``code`` says why."""

    code = "BACKUP_ERROR"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str


@dataclass(frozen=True)
class TableShape:
    """A kept table as one store holds it."""

    name: str  # its name in a backup (the same on every kind of store)
    role: str  # log | data | witness
    columns: tuple[Column, ...]
    position: str | None = None  # the column holding the log position
    application: str | None = None


class SnapshotReader(ABC):
    """Every kept table of a store, read in one transaction: one position for all."""

    @abstractmethod
    def tables(self) -> list[TableShape]:
        """The kept tables this store has, in backup order."""

    @abstractmethod
    def rows(self, table: TableShape, batch: int) -> Iterator[Sequence[tuple]]:
        """Its rows in batches, in position (else key) order, values in column order:
        ``bytes`` columns as bytes, the rest as the driver gives them."""


class RestoreWriter(ABC):
    """An empty store being filled in one transaction: all of it commits, or none."""

    @abstractmethod
    def tables(self) -> dict[str, TableShape]:
        """The kept tables the (prepared) target has, by backup name."""

    @abstractmethod
    def count(self, table: TableShape) -> int: ...

    @abstractmethod
    def insert(self, table: TableShape, source: Sequence[Column],
               rows: Sequence[Sequence[object]]) -> None:
        """Rows read in the ``source`` columns (portable values: bytes for ``bytes``,
        JSON values for the rest) into ``table``'s columns of the same names."""

    @abstractmethod
    def finish(self) -> None:
        """After the last insert: sequences set past the restored positions."""


class BackupStore(ABC):
    kind: str  # sqlite | postgres
    display: str  # the database as it may be printed (no password)

    @abstractmethod
    def read(self) -> AbstractContextManager[SnapshotReader]: ...

    @abstractmethod
    def write(self) -> AbstractContextManager[RestoreWriter]:
        """The tables are created first (as the application creates them)."""

"""Statement parameters turned into PostgreSQL's binary form before a transaction begins.

WHY: psycopg dumps a statement's parameters when the statement is executed. An append's
columns of a heavy candle (120,000 events, ~50 MB) take a while to dump on a loaded
machine, and the table lock is held meanwhile while the server counts the session as idle
in its transaction: past the library's 5 s (``POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT``)
it is ended, and the append retried from the start (seen at 10,000 bots: the first close
retried for minutes). Dumped here first, inside the transaction they are only sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import pq
from psycopg.adapt import AdaptersMap, Dumper, PyFormat, Transformer


class Dumped:
    """One parameter's bytes in binary, and the type they are of (as psycopg chose it:
    e.g. ``int2[]`` for small integers, cast by the statement)."""

    __slots__ = ("data", "oid")

    def __init__(self, data: bytes, oid: int):
        self.data, self.oid = data, oid


class _DumpedDumper(Dumper):
    format = pq.Format.BINARY

    def get_key(self, obj: Dumped, format: PyFormat) -> Any:
        return (Dumped, obj.oid)  # one dumper per type, as psycopg's own list dumpers

    def upgrade(self, obj: Dumped, format: PyFormat) -> Dumper:
        dumper = _DumpedDumper(Dumped)
        dumper.oid = obj.oid
        return dumper

    def dump(self, obj: Dumped) -> bytes:
        return obj.data


def dump_columns(columns: Sequence[list]) -> list[Dumped]:
    """Each column (a list of uuid, int, str or bytes values) as one binary array."""
    transformer = Transformer()
    dumped = []
    for column in columns:
        dumper = transformer.get_dumper(column, PyFormat.BINARY)
        dumped.append(Dumped(bytes(dumper.dump(column)), dumper.oid))
    return dumped


def accept_dumped(adapters: AdaptersMap) -> None:
    """Let statements run with ``adapters`` take ``Dumped`` parameters (``%b``)."""
    adapters.register_dumper(Dumped, _DumpedDumper)


def as_dumped(columns: Any) -> Any:
    """``columns`` dumped, or None as it is."""
    return None if columns is None else dump_columns(columns)

"""Values between a backup's portable kinds and each database's own types."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

# PostgreSQL's data types (information_schema.columns.data_type) by portable kind.
_PG_KINDS = {
    "bigint": "int", "integer": "int", "smallint": "int", "bytea": "bytes", "uuid": "uuid",
    "text": "text", "character varying": "text", "character": "text",
    "timestamp with time zone": "time", "timestamp without time zone": "time",
    "boolean": "bool", "numeric": "decimal", "double precision": "real", "real": "real",
    "json": "json", "jsonb": "json",
}
_SQLITE_KINDS = {"INTEGER": "int", "INT": "int", "BIGINT": "int", "TEXT": "text",
                 "BLOB": "bytes", "REAL": "real", "BOOLEAN": "bool", "TIMESTAMP": "time"}


def postgres_kind(data_type: str) -> str:
    return _PG_KINDS.get(data_type, "any")


def sqlite_kind(declared: str) -> str:
    return _SQLITE_KINDS.get(declared.strip().upper(), "any")


def converter(source: str, target: str, *, sqlite: bool) -> Callable[[object], object]:
    """Turns a portable value read from a ``source`` column into what the driver writes
    into a ``target`` column. On SQLite a UUID is stored as 32 hex digits (the event
    store library's convention), on PostgreSQL as ``uuid``."""
    if target == "uuid":
        return lambda v: v if v is None else UUID(str(v))
    if source == "uuid" and sqlite:
        return lambda v: v if v is None else UUID(str(v)).hex
    if target == "time" and not sqlite:
        return lambda v: v if v is None or not isinstance(v, str) else datetime.fromisoformat(v)
    if target == "decimal":
        return lambda v: v if v is None else Decimal(str(v))
    if target == "json" and not sqlite:
        return lambda v: v if v is None or isinstance(v, str) else json.dumps(v)
    if target == "bytes" and source != "bytes":
        return lambda v: v if v is None or isinstance(v, bytes) else str(v).encode()
    return _same


def _same(value: object) -> object:
    return value


def portable(value: object) -> object:
    """A value read from a database as it is kept in a backup row (JSON, bytes aside)."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):  # in UTC, whatever the session's time zone
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)

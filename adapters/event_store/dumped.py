"""Statement parameters turned into PostgreSQL's binary form before a transaction begins.

WHY: psycopg dumps a statement's parameters when the statement is executed. An append's
columns of a heavy candle (120,000 events, ~50 MB) take a while to dump on a loaded
machine, and the table lock is held meanwhile while the server counts the session as idle
in its transaction: past the library's 5 s (``POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT``)
it is ended, and the append retried from the start (seen at 10,000 bots: the first close
retried for minutes). Dumped here first, inside the transaction they are only sent."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any
from uuid import UUID

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
        fast = _fast_array(column)
        if fast is None:
            dumper = transformer.get_dumper(column, PyFormat.BINARY)
            fast = Dumped(bytes(dumper.dump(column)), dumper.oid)
        dumped.append(fast)
    return dumped


# PostgreSQL's binary array (array_send): dimensions, a null flag, the element type, the
# length and lower bound of its one dimension, then each element's length and bytes.
_HEAD = struct.Struct(">iiIii").pack
_LENGTH = struct.Struct(">i").pack
_UUID_LENGTH = _LENGTH(16)
# element type: (element oid, array oid)
_UUID, _INT8, _TEXT, _BYTEA = (2950, 2951), (20, 1016), (25, 1009), (17, 1001)


def _fast_array(column: list) -> Dumped | None:
    """``column`` as a one-dimensional binary array, built in a few C calls; None when it
    is empty, holds a None or a type not listed here (psycopg dumps it then).

    WHY: psycopg dumps a list element by element in Python (``ListBinaryDumper``): an
    append's four columns and its seals' four were ~20% of a heavy candle's processor time
    (cProfile of ``bench_step.py``). Bytes equal psycopg's for the same element type."""
    if not column:
        return None
    first, count = type(column[0]), len(column)
    try:
        if first is UUID:
            head = _HEAD(1, 0, _UUID[0], count, 1) + _UUID_LENGTH
            return Dumped(head + _UUID_LENGTH.join([u.bytes for u in column]), _UUID[1])
        if first is int:
            return Dumped(_HEAD(1, 0, _INT8[0], count, 1) + _bigints(column), _INT8[1])
        if first is str:
            return _texts(column)
        if first is bytes:
            return _varlena(_BYTEA, column)
    except (AttributeError, TypeError, KeyError, struct.error):  # a None, another type
        return None
    return None


def _bigints(column: list) -> bytes:
    """Each int as its length (8) and its 8 bytes, big-endian: all packed in one call, then
    laid out 12 bytes apart by strided copies (a pack per element was ~0.1 us each)."""
    count = len(column)
    packed = struct.pack(f">{count}q", *column)  # (struct.error: not all int64)
    laid = bytearray(12 * count)
    laid[3::12] = b"\x08" * count  # each length: 0, 0, 0, 8
    for byte in range(8):
        laid[4 + byte::12] = packed[byte::8]
    return bytes(laid)


def _texts(column: list[str]) -> Dumped:
    """Text elements, each distinct value encoded once (an append's topics: a few kinds of
    event for thousands of rows)."""
    encoded: dict[str, bytes] = {}
    for text in set(column):  # (AttributeError: not all str)
        data = text.encode()
        encoded[text] = _LENGTH(len(data)) + data
    return Dumped(_HEAD(1, 0, _TEXT[0], len(column), 1)
                  + b"".join(map(encoded.__getitem__, column)), _TEXT[1])


def _varlena(types: tuple[int, int], items: list[bytes]) -> Dumped:
    """Elements of their own lengths, the header and them joined in one copy."""
    parts: list[Any] = [None] * (2 * len(items) + 1)
    parts[0] = _HEAD(1, 0, types[0], len(items), 1)
    parts[1::2] = map(_LENGTH, map(len, items))
    parts[2::2] = items
    return Dumped(b"".join(parts), types[1])


def repeated_text(text: str, count: int) -> Dumped:
    """A text array of ``count`` times ``text`` (a seal's key fingerprint, on every row)."""
    data = text.encode()
    return Dumped(_HEAD(1, 0, _TEXT[0], count, 1) + (_LENGTH(len(data)) + data) * count,
                  _TEXT[1])


def ascii_texts(column: list[str], width: int) -> Dumped | None:
    """A text array of ASCII strings all ``width`` long (hex seals), the lengths woven in by
    one ``join`` and the whole encoded once; None if one is not (the caller dumps it)."""
    mark = _LENGTH(width).decode("latin-1")  # (< 128 each when width < 128: one byte each)
    try:
        if not column or width > 127 or any(len(text) != width for text in column):
            return None
        joined = (mark + mark.join(column)).encode("ascii")
    except (TypeError, UnicodeEncodeError):  # a None, another type, a letter beyond ASCII
        return None
    return Dumped(_HEAD(1, 0, _TEXT[0], len(column), 1) + joined, _TEXT[1])


def accept_dumped(adapters: AdaptersMap) -> None:
    """Let statements run with ``adapters`` take ``Dumped`` parameters (``%b``)."""
    adapters.register_dumper(Dumped, _DumpedDumper)

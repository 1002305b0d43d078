"""A candle file's bytes and their SHA-256, read without numpy or pyarrow.

Reading and hashing release the GIL, so a command can start them on a thread first and
import the parser's libraries meanwhile (``application.bootstrap.backtest``).

A large file whose parsed copy is kept (adapters/marketdata/candle_cache.py) need not be
held whole: ``read_candle_file(path, ends_only=True)`` hashes it as it streams through one
reused buffer and keeps only its two ends, which are all that finding and checking the
copy reads. Reading a year of 1-minute candles (31 MB) whole into memory cost half as
much processor time again as hashing it, and 31 MB of the command's peak memory (bt16).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from domain.errors import DomainError

CACHE_ENV = "TRADETAPE_CANDLE_CACHE"
# Files from this size on are kept parsed (candle_cache), so they may be read by their ends
SMALLEST_CACHED_BYTES = 1 << 20
TAIL_BYTES = 4096  # the last candle's line lies in them (candle_cache checks it)
_STREAM_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, eq=False)
class CandleFile:
    source: str
    data: bytes
    sha256: str

    @property
    def head(self) -> bytes:
        """The start of the file (here, all of it)."""
        return self.data

    @property
    def tail(self) -> bytes:
        """The file's last ``TAIL_BYTES`` (all of it when it is shorter)."""
        return self.data if len(self.data) < TAIL_BYTES else self.data[-TAIL_BYTES:]

    @property
    def size(self) -> int:
        return len(self.data)

    def whole(self) -> CandleFile:
        return self


@dataclass(frozen=True, eq=False)
class CandleFileEnds:
    """A large file's SHA-256 and size, and its first (``head``, about a megabyte) and last
    (``tail``) bytes, without the rest. ``whole()`` reads it again, whole, for a parse: its
    hash is then the hash of the bytes read then, so what is parsed and what is recorded
    with a run are always the same bytes, even for a file changed in between."""

    source: str
    size: int
    sha256: str
    head: bytes
    tail: bytes

    def whole(self) -> CandleFile:
        found = read_candle_file(self.source)
        if not isinstance(found, CandleFile):  # pragma: no cover - read whole by default
            raise TypeError(found)
        return found


def caching_off(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """``TRADETAPE_CANDLE_CACHE=off``: every file is parsed, none is kept."""
    return environ.get(CACHE_ENV, "").strip().lower() == "off"


def read_candle_file(
    path: str | os.PathLike[str], *, ends_only: bool = False
) -> CandleFile | CandleFileEnds:
    """The file's bytes and hash (``ends_only``: for a file of ``SMALLEST_CACHED_BYTES`` or
    more, its hash and ends only); ``CANDLES_UNREADABLE`` when there is no file to read."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            if ends_only and os.fstat(file.fileno()).st_size >= SMALLEST_CACHED_BYTES:
                return _stream(file, source)
            data = file.read()
    except OSError as error:
        raise DomainError(f"cannot read {source}: {error.strerror or error}",
                          code="CANDLES_UNREADABLE", field="candles") from None
    return CandleFile(source, data, hashlib.sha256(data).hexdigest())


def _stream(file, source: str) -> CandleFileEnds:
    """Hash the file through one buffer (no 31 MB allocation, no page faulted in for it),
    keeping its first chunk and its last ``TAIL_BYTES``."""
    digest = hashlib.sha256()
    buffer = bytearray(_STREAM_CHUNK_BYTES)
    view = memoryview(buffer)
    head: bytes | None = None
    tail, size = b"", 0
    while read := file.readinto(buffer):
        chunk = view[:read]
        digest.update(chunk)
        if head is None:
            head = bytes(chunk)
        tail = (tail + bytes(chunk[-TAIL_BYTES:]))[-TAIL_BYTES:]
        size += read
    return CandleFileEnds(source, size, digest.hexdigest(), head or b"", tail)

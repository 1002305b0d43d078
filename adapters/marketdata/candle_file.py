"""A candle file's bytes and their SHA-256, read without numpy or pyarrow.

Reading and hashing release the GIL, so a command can start them on a thread first and
import the parser's libraries meanwhile (``application.bootstrap.backtest``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from domain.errors import DomainError


@dataclass(frozen=True, eq=False)
class CandleFile:
    source: str
    data: bytes
    sha256: str


def read_candle_file(path: str | os.PathLike[str]) -> CandleFile:
    """The file's bytes and hash; ``CANDLES_UNREADABLE`` when there is no file to read."""
    source = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DomainError(f"cannot read {source}: {error.strerror or error}",
                          code="CANDLES_UNREADABLE", field="candles") from None
    return CandleFile(source, data, hashlib.sha256(data).hexdigest())

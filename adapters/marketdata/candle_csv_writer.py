"""Appends candles to a backtest CSV (``csv_candles``' format), resumably.

Opening an existing file checks it as a backtest would (header, every rule) and finds its
last candle, so a download continues after it. A line without its newline can only be what
an interrupted write left (every line is written whole, newline last): it is cut off, and
the candle is fetched again. Each page is written with one ``write`` and synced, so a kill
leaves at worst that one partial line, and a resumed download gives the same bytes as one
that was never stopped.

Numbers are written as the shipped files have them: plain decimals without exponent or
trailing zeros (Binance's ``42283.58000000`` is ``42283.58``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from adapters.marketdata.candle_file import CandleFile
from adapters.marketdata.csv_candles import (
    HEADER,
    CandleDataError,
    candles_from_rows,
    parse_candle_file,
)
from domain.errors import DomainError
from domain.ports import HistoricCandle

HEADER_LINE = (",".join(HEADER) + "\n").encode()


def plain(number: Decimal) -> str:
    """``number`` as a plain decimal: no exponent, no trailing zeros (``-0`` is ``0``)."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def candle_line(candle: HistoricCandle) -> str:
    return ",".join([str(candle.ts_ms), *(plain(v) for v in candle[1:])]) + "\n"


class CandleCsvWriter:
    """``last_ts``/``interval_ms`` of what the file already holds; :meth:`append` pages."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.last_ts: int | None = None
        self.interval_ms: int | None = None
        self.dropped_partial_line = False
        self._last: HistoricCandle | None = None
        self._fd = self._open()

    def _open(self) -> int:
        source = os.fspath(self.path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise DomainError(f"cannot write {source}: {error.strerror or error}",
                              code="CANDLES_UNWRITABLE", field="out") from None
        try:
            self._resume(fd, source)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _resume(self, fd: int, source: str) -> None:
        data = _read_all(fd)
        if HEADER_LINE.startswith(data):  # new, empty, or a header cut short
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, HEADER_LINE)
            os.fsync(fd)
            return
        complete = data[: data.rfind(b"\n") + 1]
        if not complete.startswith(HEADER_LINE):
            # Not ours, or not a candle file at all: said as the backtest would say it.
            parse_candle_file(CandleFile(source, data, ""))
            raise DomainError(f"{source} is not a candle file this command wrote",
                              code="BAD_CANDLE_DATA", field="out")
        if len(complete) > len(HEADER_LINE):
            candles = parse_candle_file(CandleFile(source, complete, ""))
            self.last_ts = int(candles.timestamps[-1])
            self.interval_ms = candles.interval_ms
            o, h, low, c = candles.exact(-1)
            self._last = HistoricCandle(self.last_ts, o, h, low, c, Decimal(0))
        if len(complete) < len(data):
            os.ftruncate(fd, len(complete))
            os.fsync(fd)
            self.dropped_partial_line = True
        os.lseek(fd, 0, os.SEEK_END)

    def append(self, candles: Sequence[HistoricCandle], describe) -> None:
        """Write ``candles`` (oldest first, after the file's last) as one write, synced.
        A candle that breaks a backtest rule is refused (``BAD_CANDLE_DATA``, naming its
        time through ``describe(ts_ms)``) and nothing of the page is written."""
        if not candles:
            return
        _check(self._last, candles, describe)
        data = "".join(candle_line(candle) for candle in candles).encode("ascii")
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        self._last, self.last_ts = candles[-1], candles[-1].ts_ms

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _check(previous: HistoricCandle | None, candles: Sequence[HistoricCandle],
           describe) -> None:
    """The backtest's own rules (``csv_candles``), on the page and the candle before it."""
    rows = ([previous] if previous is not None else []) + list(candles)
    try:
        candles_from_rows([tuple(row) for row in rows], source="exchange")
    except CandleDataError as error:
        bad = rows[error.line - 2]
        raise DomainError(f"the exchange's candle at {describe(bad.ts_ms)} breaks the "
                          f"backtest's rule {error.rule}: {str(error).split(': ', 1)[-1]}",
                          code="BAD_CANDLE_DATA") from None

"""Candles from CSV files: loaded fast into numpy arrays, read back exactly as Decimals.

File format, one candle a line after the header ``timestamp_ms,open,high,low,close,volume``:
``timestamp_ms`` is the candle's open time (UTC, milliseconds, an integer); the other five are
plain decimals: an optional minus, digits and an optional decimal point (``42283.58``, ``1.``,
``.5``). Exponents (``1e5``), ``+``, spaces, quotes, ``nan`` and ``inf`` are refused as
``unparsable_number``: tools that write them have usually been through floats already, and a
plain decimal is the only form whose text *is* its exact value. Blank lines between candles
are refused too (``wrong_column_count``), so line N of the file is always candle N-2; blank
lines after the last candle (an editor's or a script's extra newline) are not candles and
are left out.

Loading reads the numbers twice without reading the file twice: pyarrow parses every column as
text (kept for :meth:`Candles.exact`) and casts it to float64 for the arrays, and numpy checks
the rules on the floats. Float comparisons only *locate* suspicious rows; every row they cannot
clear exactly is checked again as Decimals from its original text before anything is refused.
"""

from __future__ import annotations

import contextlib
import operator
import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

import numpy as np
import pyarrow as pa

from adapters.marketdata.candle_file import CandleFile, read_candle_file
from domain.errors import DomainError, InvalidNumberError
from domain.money import to_decimal

HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = HEADER[1:5]
NUMBER_COLUMNS = HEADER[1:]
RULES = (
    "empty_file",
    "bad_header",
    "wrong_column_count",
    "unparsable_number",
    "non_increasing_timestamp",
    "non_positive_price",
    "high_below_open_close",
    "low_above_open_close",
    "negative_volume",
)

_HEADER_BYTES = ",".join(HEADER).encode()
_UTF8_BOM = b"\xef\xbb\xbf"
_FIRST_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|\Z)")
_PLAIN_INTEGER = re.compile(rb"-?[0-9]+\Z")
_PLAIN_DECIMAL = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)\Z")
# A body of plain numbers holds only these bytes. pyarrow's casts accept more ("1e5", "inf",
# "0x10" as an integer); a file with any other byte goes straight to the exact line-by-line
# reader, which refuses those forms with the right line number.
_PLAIN_BODY_BYTES = b"0123456789.-,\r\n"
# Decimals of at most 15 significant digits (in float64's normal range) round to distinct
# doubles, so float comparisons of them are exact. A text of at most 15 characters has at
# most 15 digits and lies between 1e-13 and 1e15.
_EXACT_IN_FLOAT_MAX_CHARS = 15
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SHOWN_TEXT_MAX_CHARS = 60
# pyarrow parses blocks in parallel; 8 MB blocks keep both cores busy on a year of 1-minute
# candles (31 MB) with a handful of chunks instead of thirty.
_BLOCK_BYTES = 8 << 20


class CandleDataError(DomainError, ValueError):
    """A candle file or row breaks a rule. ``line`` is 1-based with the header as line 1."""

    code = "BAD_CANDLE_DATA"

    def __init__(self, source: str, line: int, rule: str, problem: str, field: str | None = None):
        super().__init__(f"{source} line {line}: {problem} (rule: {rule})", field=field)
        self.source = source
        self.line = line
        self.rule = rule


@dataclass(frozen=True, eq=False)
class Candles:
    """A validated series of candles, oldest first.

    The float arrays are for fast scans (indicators, locating a trigger); when a price matters,
    take it from :meth:`exact`, which reads the original text. Arrays are read-only so the two
    views can never disagree. Build with :func:`load_candles` or :func:`candles_from_rows`.
    """

    timestamps: np.ndarray  # int64, candle open time, UTC milliseconds
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: str
    sha256: str | None  # of the file's bytes; None when built in memory
    ohlc_text: tuple[pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray] = field(
        repr=False
    )

    def __len__(self) -> int:
        return len(self.timestamps)

    def __repr__(self) -> str:
        return (
            f"Candles(source={self.source!r}, candles={len(self)}, "
            f"interval_ms={self.interval_ms}, gaps={len(self.gaps)})"
        )

    def exact(self, i: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Open, high, low and close of candle ``i``, exactly as written."""
        i = self._row(i)
        o, h, l, c = self._texts  # noqa: E741
        return Decimal(o.text(i)), Decimal(h.text(i)), Decimal(l.text(i)), Decimal(c.text(i))

    def exact_close(self, i: int) -> Decimal:
        return Decimal(self._texts[3].text(self._row(i)))

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> Candles:
        """The candles opening at or after ``start_ms`` and before ``end_ms`` (UTC ms; None:
        unbounded), sharing this series' memory, with its source and file hash."""
        stamps = self.timestamps
        first = 0 if start_ms is None else int(np.searchsorted(stamps, start_ms, side="left"))
        last = len(self) if end_ms is None else int(np.searchsorted(stamps, end_ms, side="left"))
        last = max(first, last)
        arrays = [array[first:last] for array in (stamps, self.open, self.high, self.low,
                                                  self.close, self.volume)]
        texts = tuple(text.slice(first, last - first) for text in self.ohlc_text)
        return Candles(*arrays, source=self.source, sha256=self.sha256, ohlc_text=texts)

    def _row(self, i: int) -> int:
        n = len(self.timestamps)
        i = operator.index(i)
        if not -n <= i < n:
            raise IndexError(f"candle {i} of {n}")
        return i + n if i < 0 else i

    @cached_property
    def _texts(self) -> tuple[_TextColumn, _TextColumn, _TextColumn, _TextColumn]:
        o, h, l, c = (_TextColumn(column) for column in self.ohlc_text)  # noqa: E741
        return o, h, l, c

    @property
    def interval_ms(self) -> int | None:
        """The most common step between consecutive candles; None with fewer than two."""
        return self._spacing[0]

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """``(index, missing_candles)`` wherever candle ``index`` comes more than one interval
        after candle ``index - 1``; a step of 2.5 intervals misses 2 candles."""
        return self._spacing[1]

    @cached_property
    def _spacing(self) -> tuple[int | None, list[tuple[int, int]]]:
        """``interval_ms`` and ``gaps`` from one pass over the steps (every backtest asks
        both; a year of 1-minute steps is 4 MB, and sorting it for the most common step
        cost more than the rest of its reading: bt16)."""
        if len(self) < 2:
            return None, []
        steps = np.diff(self.timestamps)
        interval = _most_common(steps)
        before_gap = np.flatnonzero(steps > interval)
        missing = (steps[before_gap] - 1) // interval
        return interval, list(zip((before_gap + 1).tolist(), missing.tolist(), strict=True))


def _most_common(steps: np.ndarray) -> int:
    """The most common value of ``steps``, the smallest on a tie. The first step is it when
    more than half the steps are that step (a gapless file: no sort needed)."""
    first = steps[0]
    if 2 * int(np.count_nonzero(steps == first)) > len(steps):
        return int(first)
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])  # on a tie, the smallest


class _TextColumn:
    """Row ``i``'s text of a pyarrow string column, read from the column's own buffers:
    indexing the column makes a scalar object per read (a backtest reads a row per step)."""

    __slots__ = ("_chunks", "_starts")

    def __init__(self, column: pa.ChunkedArray):
        self._starts: list[int] = []  # the first row of each chunk
        self._chunks: list[tuple[memoryview, memoryview, int]] = []
        row = 0
        for chunk in column.chunks:
            if len(chunk):
                _, offsets, data = chunk.buffers()
                self._starts.append(row)
                self._chunks.append((memoryview(offsets).cast("i"), memoryview(data),
                                     chunk.offset - row))
                row += len(chunk)

    def text(self, i: int) -> str:
        """The text of row ``i`` (``0 <= i < len``)."""
        offsets, data, shift = self._chunks[bisect_right(self._starts, i) - 1]
        j = i + shift
        return data[offsets[j]:offsets[j + 1]].tobytes().decode("ascii")


def load_candles(path: str | os.PathLike[str]) -> Candles:
    """Load and validate a candle CSV; raise :class:`CandleDataError` at its first bad line,
    ``CANDLES_UNREADABLE`` when there is no file to read."""
    return parse_candle_file(read_candle_file(path))


def parse_candle_file(file: CandleFile) -> Candles:
    """Validate and parse a file read by :func:`read_candle_file`."""
    data, source = file.data, file.source
    body_start = candles_start(data, source)
    body_end = _end_of_candles(data)
    if body_start >= body_end:
        raise CandleDataError(source, 2, "empty_file", "the file has a header but no candles")
    # pyarrow releases the GIL: the casts of the columns run side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        columns = _read_plain_columns(data, body_start, body_end, pool)
    if columns is None:
        # Something is not a plain number or a line is malformed: only the exact reader can
        # say which line, and it builds the result itself if it finds nothing wrong.
        body = data[body_start:body_end]
        return _build(*_read_exactly(body, source), source=source, sha256=file.sha256)
    timestamps, texts, floats = columns
    _check_fast(timestamps, texts, floats, source)
    return freeze_candles(timestamps, floats, texts, source, file.sha256)


def candles_from_rows(rows: Iterable[Sequence[object]], source: str = "memory") -> Candles:
    """Candles from ``(timestamp_ms, open, high, low, close[, volume])`` rows.

    Values are Decimals or numeric strings (a float raises ``FloatMoneyError``); a missing
    volume is 0. Rules and line numbers are those of a file: row ``k`` is line ``k + 2``.
    """
    timestamps: list[int] = []
    texts: list[list[str]] = [[] for _ in NUMBER_COLUMNS]
    previous: int | None = None
    for line, row in enumerate(rows, start=2):
        values = tuple(row)
        if len(values) not in (5, 6):
            raise CandleDataError(
                source, line, "wrong_column_count", f"expected 5 or 6 values, got {len(values)}"
            )
        timestamp = _row_timestamp(values[0], source, line)
        names = NUMBER_COLUMNS[: len(values) - 1]
        numbers = [
            _row_decimal(value, name, source, line)
            for value, name in zip(values[1:], names, strict=True)
        ]
        if len(numbers) == 4:
            numbers.append(Decimal(0))
        shown = [format(number, "f") for number in numbers]
        _check_candle(source, line, previous, timestamp, numbers, shown)
        timestamps.append(timestamp)
        for column, text in zip(texts, shown, strict=True):
            column.append(text)
        previous = timestamp
    if not timestamps:
        raise CandleDataError(source, 2, "empty_file", "no candles were given")
    return _build(timestamps, texts, source=source, sha256=None)


def candles_start(data: bytes, source: str) -> int:
    """Where the body starts; a UTF-8 byte-order mark before the header is tolerated."""
    if not data:
        raise CandleDataError(source, 1, "empty_file", "the file is empty")
    start = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    first_line = _FIRST_LINE.match(data, start)
    assert first_line is not None  # the pattern matches any text, even an empty one
    if first_line.group(1) != _HEADER_BYTES:
        raise CandleDataError(
            source,
            1,
            "bad_header",
            f"the header is {_show(first_line.group(1))}, it must be exactly "
            f"{_HEADER_BYTES.decode()!r}",
        )
    return first_line.end()


def _end_of_candles(data: bytes) -> int:
    """Where the last candle's line ends: blank lines after it are no candles. (Not
    ``rstrip``: that copies the whole file.)"""
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    return end


def _read_plain_columns(
    data: bytes, body_start: int, body_end: int, pool: Executor
) -> tuple[np.ndarray, list[pa.ChunkedArray], list[np.ndarray]] | None:
    """Timestamps, the price texts, and the floats of prices and volume; None when the body
    is not plain, or a volume is negative (for the exact reader to name its line)."""
    # ``translate`` deletes every allowed byte; checking the whole file avoids copying the
    # body, so what remains must be exactly what the header leaves.
    if data.translate(None, _PLAIN_BODY_BYTES) != data[:body_start].translate(
        None, _PLAIN_BODY_BYTES
    ):
        return None
    import pyarrow.csv as pacsv  # here: a run from a file's parsed copy never parses

    text_types = {name: pa.string() for name in PRICE_COLUMNS}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(memoryview(data)[body_start:body_end]),
            read_options=pacsv.ReadOptions(column_names=list(HEADER), block_size=_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                # Only prices are ever read exactly: volume's text is not kept.
                column_types={"timestamp_ms": pa.int64(), **text_types, "volume": pa.float64()},
                null_values=[],
                strings_can_be_null=False,
            ),
        )
        volume = table.column("volume").to_numpy()
        # signbit also flags "-0" and a negative too small for a float, which reads as -0.0
        if np.signbit(volume).any() or not np.isfinite(volume).all():
            return None
        timestamps = table.column("timestamp_ms").to_numpy()
        # Left in pyarrow's chunks: joining them would copy every text for nothing.
        texts = [table.column(name) for name in PRICE_COLUMNS]
        floats = [*pool.map(_to_float64, texts), volume]
    except pa.ArrowInvalid:
        return None
    return timestamps, texts, floats


def _to_float64(text: pa.ChunkedArray) -> np.ndarray:
    call_function, cast_options = _kernels()
    return call_function("cast", [text], cast_options.safe(pa.float64())).to_numpy()


def _kernels():
    """pyarrow's ``call_function`` and ``CastOptions``, imported when a file is parsed: a
    run from a file's parsed copy never needs them (~5 ms of processor time to import)."""
    try:  # the compiled kernels alone: pyarrow.compute's Python wrappers take ~20 ms to import
        from pyarrow._compute import CastOptions, call_function
    except ImportError:  # pragma: no cover - a pyarrow that moved them
        from pyarrow.compute import CastOptions, call_function
    return call_function, CastOptions


def _check_fast(
    timestamps: np.ndarray, texts: list[pa.ChunkedArray], floats: list[np.ndarray], source: str
) -> None:
    """Check every rule on the floats; re-check exactly only the rows floats cannot clear."""
    o, h, l, c, v = floats  # noqa: E741
    suspect = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(l) & np.isfinite(c))
    suspect[1:] |= timestamps[1:] <= timestamps[:-1]
    suspect |= (o <= 0) | (h <= 0) | (l <= 0) | (c <= 0)
    suspect |= (h < o) | (h < c) | (l > o) | (l > c)
    call_function, _ = _kernels()
    lengths = [call_function("binary_length", [text]).to_numpy() for text in texts]
    if max(int(length.max()) for length in lengths) > _EXACT_IN_FLOAT_MAX_CHARS:
        # Two long decimals can round to the same double, so a float tie proves nothing.
        ties = (h == o) | (h == c) | (l == o) | (l == c)
        long_text = np.logical_or.reduce([n > _EXACT_IN_FLOAT_MAX_CHARS for n in lengths])
        suspect |= ties & long_text
    for i in np.flatnonzero(suspect).tolist():
        # the volume was checked already: not negative, so any float stands in for it
        shown = [*(text[i].as_py() for text in texts), repr(float(v[i]))]
        previous = int(timestamps[i - 1]) if i else None
        numbers = [*(Decimal(text) for text in shown[:4]), Decimal(float(v[i]))]
        _check_candle(source, i + 2, previous, int(timestamps[i]), numbers, shown)


def _read_exactly(body: bytes, source: str) -> tuple[list[int], list[list[str]]]:
    """The slow, exact reader: one line at a time, as Decimals. Used to name the first bad
    line when the fast reader refuses a file."""
    timestamps: list[int] = []
    texts: list[list[str]] = [[] for _ in NUMBER_COLUMNS]
    previous: int | None = None
    # bytes.splitlines breaks at \n, \r\n and \r, exactly where pyarrow does.
    for line, raw in enumerate(body.splitlines(), start=2):
        fields = raw.split(b",")
        if len(fields) != len(HEADER):
            found = "an empty line" if not raw else f"{len(fields)}"
            raise CandleDataError(
                source, line, "wrong_column_count", f"expected {len(HEADER)} columns, found {found}"
            )
        timestamp = _parse_timestamp(fields[0], source, line)
        shown = [
            _parse_plain_decimal(raw_value, name, source, line)
            for raw_value, name in zip(fields[1:], NUMBER_COLUMNS, strict=True)
        ]
        _check_candle(source, line, previous, timestamp, [Decimal(t) for t in shown], shown)
        timestamps.append(timestamp)
        for column, text in zip(texts, shown, strict=True):
            column.append(text)
        previous = timestamp
    if not timestamps:
        raise CandleDataError(source, 2, "empty_file", "the file has a header but no candles")
    return timestamps, texts


def _parse_timestamp(raw: bytes, source: str, line: int) -> int:
    if _PLAIN_INTEGER.match(raw):
        value = int(raw)
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
    raise CandleDataError(
        source,
        line,
        "unparsable_number",
        f"timestamp_ms {_show(raw)} is not a whole number of milliseconds",
        field="timestamp_ms",
    )


def _parse_plain_decimal(raw: bytes, name: str, source: str, line: int) -> str:
    if not _PLAIN_DECIMAL.match(raw):
        raise CandleDataError(
            source,
            line,
            "unparsable_number",
            f"{name} {_show(raw)} is not a plain decimal",
            field=name,
        )
    return raw.decode("ascii")


def _row_timestamp(value: object, source: str, line: int) -> int:
    timestamp = None
    if not isinstance(value, bool):  # True is an int to Python, never a time
        with contextlib.suppress(TypeError):
            timestamp = operator.index(value)
    if timestamp is None or not _INT64_MIN <= timestamp <= _INT64_MAX:
        raise CandleDataError(
            source,
            line,
            "unparsable_number",
            f"timestamp_ms {value!r} is not a whole number of milliseconds",
            field="timestamp_ms",
        )
    return timestamp


def _row_decimal(value: object, name: str, source: str, line: int) -> Decimal:
    try:
        return to_decimal(value, field=f"{name} (line {line})")
    except InvalidNumberError:
        raise CandleDataError(
            source, line, "unparsable_number", f"{name} {value!r} is not a number", field=name
        ) from None


def _check_candle(
    source: str,
    line: int,
    previous: int | None,
    timestamp: int,
    numbers: Sequence[Decimal],
    shown: Sequence[str],
) -> None:
    """The rules of one candle, exactly, in the order a line reports them."""
    if previous is not None and timestamp <= previous:
        raise CandleDataError(
            source,
            line,
            "non_increasing_timestamp",
            f"timestamp_ms {timestamp} is not after the previous candle's {previous}",
            field="timestamp_ms",
        )
    for name, number, text in zip(PRICE_COLUMNS, numbers[:4], shown[:4], strict=True):
        if number <= 0:
            raise CandleDataError(
                source, line, "non_positive_price", f"{name} {text} is not positive", field=name
            )
    o, h, l, c, volume = numbers  # noqa: E741
    for name, number, text in (("open", o, shown[0]), ("close", c, shown[3])):
        if h < number:
            raise CandleDataError(
                source,
                line,
                "high_below_open_close",
                f"high {shown[1]} is below {name} {text}",
                field="high",
            )
    for name, number, text in (("open", o, shown[0]), ("close", c, shown[3])):
        if l > number:
            raise CandleDataError(
                source,
                line,
                "low_above_open_close",
                f"low {shown[2]} is above {name} {text}",
                field="low",
            )
    if volume < 0:
        raise CandleDataError(
            source, line, "negative_volume", f"volume {shown[4]} is negative", field="volume"
        )


def _build(
    timestamps: list[int], texts: list[list[str]], *, source: str, sha256: str | None
) -> Candles:
    text_arrays = [pa.chunked_array([pa.array(column, pa.string())]) for column in texts]
    # Python's float() rounds correctly, as pyarrow's cast does, so both readers give the
    # same arrays (inf and 0.0 included, for decimals beyond a double's range).
    floats = [np.array([float(text) for text in column], dtype=np.float64) for column in texts]
    return freeze_candles(np.array(timestamps, dtype=np.int64), floats, text_arrays, source, sha256)


def freeze_candles(
    timestamps: np.ndarray,
    floats: list[np.ndarray],
    texts: list[pa.ChunkedArray],
    source: str,
    sha256: str | None,
) -> Candles:
    arrays = [timestamps, *floats]
    for array in arrays:
        array.flags.writeable = False
    return Candles(*arrays, source=source, sha256=sha256, ohlc_text=tuple(texts[:4]))


def _show(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    if len(text) > _SHOWN_TEXT_MAX_CHARS:
        text = text[:_SHOWN_TEXT_MAX_CHARS] + "…"
    return repr(text)

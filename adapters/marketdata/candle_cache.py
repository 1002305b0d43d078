"""A cache of parsed candle files, keyed by the SHA-256 of the file's bytes.

Parsing and checking a year of 1-minute candles (31 MB of CSV) costs a backtest more than
the run itself; the same file is usually backtested again and again (another configuration,
another period). What the parser built from a file that passed every rule is kept as an
Arrow IPC file, ``<sha256>-v1.arrow``, and memory-mapped on the next run of a file with
the same bytes: the float arrays and the exact price texts are read in place, not parsed.

The key is the content, not the name or the time: the file is still read and hashed on
every run (the hash is recorded with the run), and a changed byte is another file. Only
files of 1 MB or more that parsed without a fault are kept, so a refused file is refused
again with its line. A cache file is written whole under another name and renamed into
place; one that does not read back as this layout, or whose first and last candles are not
the file's own first and last lines, is ignored. ``TRADETAPE_CANDLE_CACHE``: the directory (default
``$XDG_CACHE_HOME/tradetape/candles``, else ``~/.cache/tradetape/candles``), or ``off``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as paipc

from adapters.marketdata.candle_file import (
    CACHE_ENV,
    SMALLEST_CACHED_BYTES,
    TAIL_BYTES,
    CandleFile,
    CandleFileEnds,
    caching_off,
)
from adapters.marketdata.csv_candles import (
    CandleDataError,
    Candles,
    candles_start,
    freeze_candles,
    parse_candle_file,
)

# Below SMALLEST_CACHED_BYTES a parse costs a few milliseconds: not worth a file in the
# user's cache (candle_file reads such a file whole, whatever it is asked).
_LAYOUT = "v1"  # a new layout gets a new name: old cache files are then simply not read
_NUMBERS = ("timestamp_ms", "open", "high", "low", "close", "volume")
_TEXTS = ("open_text", "high_text", "low_text", "close_text")
_SCHEMA = pa.schema(
    [
        pa.field(_NUMBERS[0], pa.int64(), nullable=False),
        *(pa.field(name, pa.float64(), nullable=False) for name in _NUMBERS[1:]),
        *(pa.field(name, pa.string(), nullable=False) for name in _TEXTS),
    ]
)


def cache_directory(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """Where parsed files are kept, or None when ``TRADETAPE_CANDLE_CACHE=off``."""
    if caching_off(environ):
        return None
    chosen = environ.get(CACHE_ENV, "").strip()
    if chosen:
        return Path(chosen)
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tradetape" / "candles"


def parse_cached(file: CandleFile | CandleFileEnds, directory: Path | None) -> Candles:
    """The file's candles: from the cache when it holds this file's bytes, else parsed (and
    kept for next time). Either way the same candles, or the parser's error. A file read by
    its ends only is read again whole when it must be parsed (its hash then that of the
    bytes parsed)."""
    if directory is None or not file.sha256 or file.size < SMALLEST_CACHED_BYTES:
        return parse_candle_file(file.whole())
    candles = _read(directory / f"{file.sha256}-{_LAYOUT}.arrow", file)
    if candles is None:
        whole = file.whole()
        candles = parse_candle_file(whole)
        _write(directory / f"{whole.sha256}-{_LAYOUT}.arrow", candles)
    return candles


def _read(path: Path, file: CandleFile | CandleFileEnds) -> Candles | None:
    try:
        table = paipc.open_file(pa.memory_map(str(path))).read_all()
    except (OSError, pa.ArrowException):
        return None  # none yet, or not one we can read: parse
    if table.schema != _SCHEMA or any(c.num_chunks != 1 for c in table.columns) or not len(table):
        return None
    numbers = [table.column(name).chunk(0).to_numpy() for name in _NUMBERS]
    texts = [table.column(name) for name in _TEXTS]
    if not (_is_line(file.head, 0, numbers, texts) and _is_line(file.tail, -1, numbers, texts)):
        return None
    return freeze_candles(numbers[0], numbers[1:], texts, file.source, file.sha256)


def _is_line(data: bytes, row: int, numbers: list[np.ndarray], texts) -> bool:
    """Whether the file's first (``row`` 0, ``data`` its head) or last (-1, ``data`` its
    tail) candle line is the cached row's."""
    cached = (
        ",".join([str(int(numbers[0][row])), *(text[row].as_py() for text in texts)]).encode()
        + b","
    )
    if row == 0:
        try:
            return data.startswith(cached, candles_start(data, ""))
        except CandleDataError:
            return False
    body = data[-TAIL_BYTES:].rstrip(b"\r\n")
    last = max(body.rfind(b"\n"), body.rfind(b"\r")) + 1
    return body.startswith(cached, last)


def _write(path: Path, candles: Candles) -> None:
    """Keep what was parsed, written whole under another name first; a cache that cannot be
    written (read-only home, full disk) only means the next run parses again."""
    # (process and thread in the name: the server's backtest jobs may keep one file at once)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with contextlib.suppress(OSError, pa.ArrowException, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        columns = [
            candles.timestamps,
            candles.open,
            candles.high,
            candles.low,
            candles.close,
            candles.volume,
            *(text.combine_chunks() for text in candles.ohlc_text),
        ]
        table = pa.Table.from_arrays(
            [pa.array(column) if isinstance(column, np.ndarray) else column for column in columns],
            schema=_SCHEMA,
        )
        try:
            with pa.OSFile(str(temporary), "wb") as sink, paipc.new_file(sink, _SCHEMA) as writer:
                writer.write_table(table, max_chunksize=len(table))
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)

"""The server's market as a chart shows it: the candles its feeds delivered, on the time axis
its events are stamped with, and each pair's last price (the mark of an open deal).

A replayed feed runs faster than the market it replays (at speed 60 a 1-minute candle closes
every second), so a candle is kept with the span of server time it covered, not the file's
timestamp: entries, safety fills and exits of deals then fall inside the candle they traded
on. Only the latest ``keep`` candles of each pair are kept (memory is bounded); a restarted
server refills them from its feed's history where the feed has one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.errors import DomainError
from domain.ports import ClosedCandle

MAX_CANDLES = 5000  # in an answer
MAX_STORED = 100_000  # read from a stored series for one answer
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMEFRAME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# The marks an answer read, as (pair, that pair's version): set by whoever needs to know
# what an answer depends on (the GraphQL answer cache), None otherwise.
MARKS_READ: ContextVar[set[tuple[str, int]] | None] = ContextVar("marks_read", default=None)


class ChartError(DomainError):
    """A chart question that cannot be answered as asked (the code says why)."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message, code=code, field=field)


@dataclass(frozen=True)
class TapeCandle:
    opened_at: datetime
    closed_at: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def timeframe_seconds(timeframe: str) -> int:
    """``"1m"``, ``"15m"``, ``"4h"``, ``"1d"``, ``"30s"``: a whole number of a unit, from one
    second to a week."""
    text = timeframe.strip()
    unit = TIMEFRAME_UNITS.get(text[-1:])
    digits = text[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 6:
        raise ChartError("INVALID_TIMEFRAME", f"timeframe {timeframe!r} is not a number "
                         "followed by s, m, h or d (e.g. 1m, 15m, 4h, 1d)", "timeframe")
    seconds = int(digits) * unit
    if not 1 <= seconds <= 7 * 86_400:
        raise ChartError("INVALID_TIMEFRAME", "a timeframe is one second to seven days",
                         "timeframe")
    return seconds


def aggregate(candles: Iterable[TapeCandle], seconds: int, start: datetime,
              end: datetime) -> list[dict[str, Any]]:
    """Candles opening in ``[start, end)`` merged into buckets of ``seconds`` counted from the
    Unix epoch (so a 1h bucket starts on the hour), oldest first."""
    buckets: dict[int, dict[str, Any]] = {}
    for candle in candles:
        if not start <= candle.opened_at < end:
            continue
        key = int(candle.opened_at.timestamp()) // seconds
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = {"time": candle.opened_at - timedelta(
                seconds=candle.opened_at.timestamp() - key * seconds), "open": candle.open,
                "high": candle.high, "low": candle.low, "close": candle.close}
        else:
            bucket["high"] = max(bucket["high"], candle.high)
            bucket["low"] = min(bucket["low"], candle.low)
            bucket["close"] = candle.close
    found = [buckets[k] for k in sorted(buckets)]
    if len(found) > MAX_CANDLES:
        raise ChartError("TOO_MANY_POINTS", f"{len(found)} candles, at most {MAX_CANDLES}: "
                         "choose a longer timeframe or a shorter range", "timeframe")
    return found


class MarketTape:
    def __init__(self, keep: int = 20_000):
        self.keep = keep
        self._candles: dict[str, deque[TapeCandle]] = {}
        self._lock = threading.Lock()
        self.version = 0  # grows with every candle recorded: what a subscription waits on
        self._pair_versions: dict[str, int] = {}  # the same, one pair's

    def record(self, pair: str, candle: TapeCandle) -> None:
        with self._lock:
            kept = self._candles.setdefault(pair, deque(maxlen=self.keep))
            if kept and candle.opened_at < kept[-1].opened_at:
                return  # a backfill older than what a feed already delivered
            kept.append(candle)
            self.version += 1
            self._pair_versions[pair] = self._pair_versions.get(pair, 0) + 1

    def last(self, pair: str) -> TapeCandle | None:
        with self._lock:
            kept = self._candles.get(pair)
            reads = MARKS_READ.get()
            if reads is not None:
                reads.add((pair, self._pair_versions.get(pair, 0)))
            return kept[-1] if kept else None

    def pair_version(self, pair: str) -> int:
        """Grows with every candle of ``pair`` recorded (0 before its first)."""
        return self._pair_versions.get(pair, 0)

    def pairs(self) -> list[str]:
        with self._lock:
            return sorted(self._candles)

    def candles(self, pair: str, timeframe: str, start: datetime,
                end: datetime) -> list[dict[str, Any]]:
        seconds = timeframe_seconds(timeframe)
        if end <= start:
            raise ChartError("INVALID_RANGE", "to must be after from", "to")
        with self._lock:
            kept = list(self._candles.get(pair, ()))
        return aggregate(kept, seconds, start, end)


# --- what the live loop records -------------------------------------------------------------

HISTORY = 2000  # candles a restarted server shows before its first new one


def record_candles(tape: MarketTape, feed: Any, candles: list[ClosedCandle],
                   now: datetime) -> None:
    """A poll's candles, with the spans the feed gives (a replay's) or their own times."""
    spans = getattr(feed, "spans", None)
    if not isinstance(spans, list) or len(spans) != len(candles):
        spans = [(_at(c.ts_ms), max(now, _at(c.ts_ms))) for c in candles]
    for (opened, closed), candle in zip(spans, candles, strict=True):
        tape.record(candle.pair, TapeCandle(opened, closed, candle.open, candle.high,
                                            candle.low, candle.close))


def record_history(tape: MarketTape, feed: Any, now: datetime) -> None:
    """The candles a feed can give from before now (a replay's ``recent_candles``; a live
    exchange feed gives none: its chart fills as candles close)."""
    recent = getattr(feed, "recent_candles", None)
    if recent is None:
        return
    for opened, closed, candle in recent(now, HISTORY):
        tape.record(candle.pair, TapeCandle(opened, closed, candle.open, candle.high,
                                            candle.low, candle.close))


def _at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def series_candles(series: Any, timeframe: str, start: datetime,
                   end: datetime) -> list[dict[str, Any]]:
    """A stored series' candles (``Candles``: ``between``, ``timestamps``, ``exact``,
    ``interval_ms``) opening in ``[start, end)``, merged into ``timeframe`` steps."""
    seconds = timeframe_seconds(timeframe)
    if end <= start:
        raise ChartError("INVALID_RANGE", "to must be after from", "to")
    start_ms, end_ms = _ms(start), _ms(end)
    part = series.between(start_ms, end_ms)
    step = timedelta(milliseconds=part.interval_ms or 60_000)
    if len(part) > MAX_STORED:
        raise ChartError("TOO_MANY_POINTS", f"{len(part)} stored candles in that range, at "
                         f"most {MAX_STORED} at once: choose a shorter range", "from")
    kept = []
    for i in range(len(part)):
        opened = _at(int(part.timestamps[i]))
        kept.append(TapeCandle(opened, opened + step, *part.exact(i)))
    return aggregate(kept, seconds, start, end)


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)

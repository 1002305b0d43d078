"""Downloading an exchange's candle history into a backtest file: paginated, closed candles
only, resumable, with every gap said.

- Pages follow the candles: each request starts right after the last candle received, so
  pagination itself cannot skip or repeat one. Only an empty answer moves on by a page's
  worth of time (exchanges that answer a time window rather than the next candles).
- Only closed candles: one that opened at ``t`` is closed when the exchange's own clock has
  reached ``t + timeframe`` (without a clock from the exchange: when a later candle exists).
- A gap is left as the exchange has it (the backtest counts gaps) and reported.
- Resuming: the file's last candle says where to go on; what was written stays as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from domain.ports import CandleHistory, HistoricCandle


class CandleSink(Protocol):
    last_ts: int | None

    def append(self, candles: list[HistoricCandle], describe: Callable[[int], str]) -> None: ...


@dataclass(frozen=True)
class Gap:
    start_ms: int  # the first candle missing opens at or after this
    until_ms: int  # the next candle's open time (or the end of the period)
    missing: int  # candles missing

    def describe(self) -> str:
        return (f"the exchange has no candle opening from {iso(self.start_ms)} until "
                f"{iso(self.until_ms)} ({self.missing} missing): kept as a gap")


@dataclass
class DownloadReport:
    written: int = 0
    requests: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    end_ms: int = 0  # the period's end actually fetched (exclusive): TO, or the last close
    gaps: list[Gap] = field(default_factory=list)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def download_candles(history: CandleHistory, sink: CandleSink, *, pair: str, timeframe: str,
                     timeframe_ms: int, from_ms: int, to_ms: int, page: int,
                     on_progress: Callable[[int, int], None] = lambda done, total: None,
                     on_gap: Callable[[Gap], None] = lambda gap: None) -> DownloadReport:
    """Append to ``sink`` every closed candle opening in ``[from_ms, to_ms)`` after the
    sink's last one."""
    report = DownloadReport()
    previous = sink.last_ts
    since = from_ms if previous is None else max(from_ms, previous + timeframe_ms)
    now = history.exchange_time_ms()
    end = to_ms if now is None else min(to_ms, now - timeframe_ms + 1)
    report.end_ms = end
    total = max(0, -(-(end - since) // timeframe_ms))
    on_progress(0, total)

    def expected() -> int:
        return since if previous is None else previous + timeframe_ms

    def gap(until: int, missing: int) -> None:
        if missing > 0:
            found = Gap(expected(), until, missing)
            report.gaps.append(found)
            on_gap(found)

    while since < end:
        received = history.candles(pair, timeframe, since, page)
        report.requests += 1
        fresh = _after(received, since)
        if not fresh and now is not None:
            # Some exchanges answer one window of ``page`` candles from ``since``: an empty
            # one is a gap there, not the end. (Binance answers the next candles instead.)
            since += page * timeframe_ms
            continue
        if now is None:
            fresh = fresh[:-1]  # no clock: the latest candle may still be open
        candles = [c for c in fresh if c.ts_ms < end]
        if not candles:
            break
        for candle in candles:
            gap(candle.ts_ms, (candle.ts_ms - expected()) // timeframe_ms)
            previous = candle.ts_ms
        sink.append(candles, iso)
        report.written += len(candles)
        report.first_ms = report.first_ms if report.first_ms is not None else candles[0].ts_ms
        report.last_ms = candles[-1].ts_ms
        since = candles[-1].ts_ms + timeframe_ms
        on_progress(min(total, report.written), total)
        if len(candles) < len(fresh):  # the period's end is inside this page
            break
    gap(end, -(-(end - expected()) // timeframe_ms))  # nothing more up to the end
    on_progress(total, total)
    return report


def _after(candles: list[HistoricCandle], since: int) -> list[HistoricCandle]:
    """The candles from ``since`` on, oldest first, each time once (an exchange may repeat
    the candle a page started at, or send an earlier one)."""
    seen: set[int] = set()
    kept = []
    for candle in sorted(candles, key=lambda c: c.ts_ms):
        if candle.ts_ms >= since and candle.ts_ms not in seen:
            seen.add(candle.ts_ms)
            kept.append(candle)
    return kept

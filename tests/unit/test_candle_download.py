"""Downloading candle history into a backtest CSV: pages, closed candles only, gaps said,
resume after an interruption gives the bytes of one uninterrupted download.

The expected files are slices of the shipped Binance series, whose format (plain decimals,
no trailing zeros) is the one the download writes; the fake exchange sends them as Binance
does, with eight decimals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from adapters.marketdata.candle_csv_writer import CandleCsvWriter
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.candle_download import download_candles
from domain.errors import DomainError
from domain.ports import HistoricCandle
from tests.fakes import FakeCandleHistory

MINUTE = 60_000
SERIES = shipped_series("binance_BTC_USDT-1m-2025-11.csv")
LINES = Path(SERIES).read_text().splitlines(keepends=True)  # header, then one line a candle
FIRST_MS = int(LINES[1].split(",")[0])


def shipped_candles(count: int) -> list[HistoricCandle]:
    rows = [line.strip().split(",") for line in LINES[1:count + 1]]
    return [HistoricCandle(int(r[0]), *(Decimal(v) for v in r[1:])) for r in rows]


def expected_file(first: int, last: int) -> str:
    """The shipped file's header and its candles ``first..last - 1`` (0-based)."""
    return LINES[0] + "".join(LINES[1 + first:1 + last])


def fetch(history, out: Path, *, from_ms=FIRST_MS, to_ms=FIRST_MS + 10**12, page=100,
          gaps=None):
    sink = CandleCsvWriter(out)
    try:
        return download_candles(history, sink, pair="BTC/USDT", timeframe="1m",
                                timeframe_ms=MINUTE, from_ms=from_ms, to_ms=to_ms, page=page,
                                on_gap=(gaps.append if gaps is not None else lambda g: None))
    finally:
        sink.close()


class StopAfter:
    """A history that is interrupted (Ctrl-C) at its n-th candle request."""

    def __init__(self, history, requests: int):
        self.history, self.left = history, requests

    def exchange_time_ms(self):
        return self.history.exchange_time_ms()

    def candles(self, *args):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.history.candles(*args)


def test_pages_of_the_exchange_give_the_shipped_files_bytes(tmp_path):
    history = FakeCandleHistory(shipped_candles(400), now_ms=FIRST_MS + 400 * MINUTE)
    out = tmp_path / "btc.csv"

    report = fetch(history, out, page=120)

    assert out.read_text() == expected_file(0, 400)
    assert (report.written, report.requests, report.gaps) == (400, 4, [])
    assert len(load_candles(out)) == 400


def test_the_candle_still_open_is_left_out_and_taken_by_the_next_run(tmp_path):
    history = FakeCandleHistory(shipped_candles(300), now_ms=FIRST_MS + 150 * MINUTE + 30_000)
    out = tmp_path / "btc.csv"

    fetch(history, out)
    first_run = out.read_text()
    history.now_ms = FIRST_MS + 300 * MINUTE
    fetch(history, out)

    assert first_run == expected_file(0, 150)  # candle 150 opened, not closed
    assert out.read_text() == expected_file(0, 300)


def test_to_is_exclusive_and_from_keeps_the_candles_opening_at_or_after_it(tmp_path):
    history = FakeCandleHistory(shipped_candles(300), now_ms=FIRST_MS + 300 * MINUTE)
    out = tmp_path / "btc.csv"

    fetch(history, out, from_ms=FIRST_MS + 10 * MINUTE - 1, to_ms=FIRST_MS + 250 * MINUTE)

    assert out.read_text() == expected_file(10, 250)


@pytest.mark.parametrize("stop_after", [0, 1, 2, 5])
def test_interrupted_and_resumed_gives_the_bytes_of_one_download(tmp_path, stop_after):
    history = FakeCandleHistory(shipped_candles(700), now_ms=FIRST_MS + 700 * MINUTE)
    out = tmp_path / "btc.csv"

    with pytest.raises(KeyboardInterrupt):
        fetch(StopAfter(history, stop_after), out, page=97)
    fetch(history, out, page=97)

    assert out.read_text() == expected_file(0, 700)


@pytest.mark.parametrize("cut", ["", "1761", "1761955200000,109608.01,1096", "timestamp_ms,op"])
def test_a_partial_last_line_from_a_killed_write_is_fetched_again(tmp_path, cut):
    history = FakeCandleHistory(shipped_candles(200), now_ms=FIRST_MS + 200 * MINUTE)
    out = tmp_path / "btc.csv"
    kept = expected_file(0, 80) if not cut.startswith("timestamp") else ""
    out.write_text(kept + cut)

    fetch(history, out, page=50)

    assert out.read_text() == expected_file(0, 200)


def test_a_gap_the_exchange_has_is_kept_and_said(tmp_path):
    candles = shipped_candles(300)
    history = FakeCandleHistory(candles[:100] + candles[105:], now_ms=FIRST_MS + 300 * MINUTE)
    out, gaps = tmp_path / "btc.csv", []

    report = fetch(history, out, page=60, gaps=gaps)

    assert out.read_text() == expected_file(0, 100) + "".join(LINES[106:301])
    assert [(g.start_ms, g.until_ms, g.missing) for g in gaps] == [
        (FIRST_MS + 100 * MINUTE, FIRST_MS + 105 * MINUTE, 5)]
    assert report.gaps == gaps
    assert load_candles(out).gaps == [(100, 5)]  # the backtest counts it the same


class WindowedHistory(FakeCandleHistory):
    """An exchange that answers the window ``[since, since + limit minutes)``, not the next
    ``limit`` candles: a gap longer than a page is an empty answer."""

    def candles(self, pair, timeframe, since_ms, limit):
        page = super().candles(pair, timeframe, since_ms, limit)
        return [c for c in page if c.ts_ms < since_ms + limit * MINUTE]


def test_a_gap_longer_than_a_page_on_a_windowed_exchange_is_crossed(tmp_path):
    candles = shipped_candles(600)
    history = WindowedHistory(candles[:100] + candles[350:], now_ms=FIRST_MS + 600 * MINUTE)
    out, gaps = tmp_path / "btc.csv", []

    fetch(history, out, page=60, gaps=gaps)

    assert out.read_text() == expected_file(0, 100) + "".join(LINES[351:601])
    assert [(g.start_ms, g.until_ms, g.missing) for g in gaps] == [
        (FIRST_MS + 100 * MINUTE, FIRST_MS + 350 * MINUTE, 250)]


def test_no_candle_at_the_end_of_the_period_is_said_too(tmp_path):
    history = FakeCandleHistory(shipped_candles(100), now_ms=FIRST_MS + 300 * MINUTE)
    gaps = []

    fetch(history, tmp_path / "btc.csv", to_ms=FIRST_MS + 120 * MINUTE, gaps=gaps)

    assert [(g.start_ms, g.missing) for g in gaps] == [(FIRST_MS + 100 * MINUTE, 20)]


class RepeatingHistory(FakeCandleHistory):
    """An exchange whose pages also repeat the candle before ``since`` and the last one."""

    def candles(self, pair, timeframe, since_ms, limit):
        page = super().candles(pair, timeframe, since_ms - MINUTE, limit)
        return page + page[-1:]


def test_overlapping_pages_write_each_candle_once(tmp_path):
    history = RepeatingHistory(shipped_candles(250), now_ms=FIRST_MS + 250 * MINUTE)
    out = tmp_path / "btc.csv"

    fetch(history, out, page=40)

    assert out.read_text() == expected_file(0, 250)


def test_a_candle_breaking_a_backtest_rule_stops_before_its_page_is_written(tmp_path):
    candles = shipped_candles(200)
    bad = candles[130]
    candles[130] = bad._replace(high=bad.low - 1)
    history = FakeCandleHistory(candles, now_ms=FIRST_MS + 200 * MINUTE)
    out = tmp_path / "btc.csv"

    with pytest.raises(DomainError) as caught:
        fetch(history, out, page=50)

    assert caught.value.code == "BAD_CANDLE_DATA"
    assert "2025-11-01T02:10:00Z" in str(caught.value)
    assert out.read_text() == expected_file(0, 100)


def test_a_file_that_is_not_a_candle_file_is_refused_untouched(tmp_path):
    out = tmp_path / "notes.csv"
    out.write_text("name,amount\nalice,3\n")
    history = FakeCandleHistory(shipped_candles(10), now_ms=FIRST_MS + 10 * MINUTE)

    with pytest.raises(DomainError) as caught:
        fetch(history, out)

    assert caught.value.code == "BAD_CANDLE_DATA"
    assert out.read_text() == "name,amount\nalice,3\n"
    assert history.requests == 0


def test_an_exchange_that_is_down_stops_the_download_and_keeps_what_was_written(tmp_path):
    history = FakeCandleHistory(shipped_candles(300), now_ms=FIRST_MS + 300 * MINUTE)
    out = tmp_path / "btc.csv"

    class GoesDown(StopAfter):
        def candles(self, *args):
            if self.left == 0:
                history.down = True
            self.left -= 1
            return self.history.candles(*args)

    with pytest.raises(DomainError) as caught:
        fetch(GoesDown(history, 2), out, page=100)
    history.down = False
    fetch(history, out, page=100)

    assert caught.value.code == "EXCHANGE_UNAVAILABLE"
    assert out.read_text() == expected_file(0, 300)

"""The live feed: every closed candle of every traded pair exactly once, in order, on the
exchange's clock; a disconnect is filled before later candles; failures never escape."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.ccxt_feed import CcxtFeed
from adapters.marketdata.shipped import shipped_series
from domain.ports import HistoricCandle
from tests.fakes import FakeCandleHistory

MINUTE = 60_000
LINES = Path(shipped_series("binance_BTC_USDT-1m-2025-11.csv")).read_text().splitlines()[1:]
FIRST_MS = int(LINES[0].split(",")[0])
T0 = datetime(2030, 1, 1, tzinfo=UTC)  # the wall clock: far from the market's own time


def shipped_candles(count: int) -> list[HistoricCandle]:
    rows = [line.split(",") for line in LINES[:count]]
    return [HistoricCandle(int(r[0]), *(Decimal(v) for v in r[1:])) for r in rows]


def exact(line_index: int) -> tuple:
    r = LINES[line_index].split(",")
    return (int(r[0]), *(Decimal(v) for v in r[1:5]))


def seen(candles) -> list[tuple]:
    return [(c.ts_ms, c.open, c.high, c.low, c.close) for c in candles]


def test_a_new_pair_starts_at_its_latest_closed_candle_then_takes_each_once():
    history = FakeCandleHistory(shipped_candles(500), now_ms=FIRST_MS + 100 * MINUTE + 5)
    feed = CcxtFeed(history, lambda: {"BTC/USDT"}, poll_seconds=2)

    first = feed.poll(T0)
    history.now_ms += 37 * MINUTE  # a fast exchange: 37 minutes in 2 seconds
    second = feed.poll(T0 + timedelta(seconds=2))

    assert seen(first) == [exact(99)]  # candle 100 is open at that time
    assert seen(second) == [exact(i) for i in range(100, 137)]
    assert {c.pair for c in first + second} == {"BTC/USDT"}


def test_polls_are_paced_by_poll_seconds_and_cost_nothing_between():
    history = FakeCandleHistory(shipped_candles(100), now_ms=FIRST_MS + 10 * MINUTE)
    feed = CcxtFeed(history, lambda: {"BTC/USDT"}, poll_seconds=2)
    feed.poll(T0)
    requests = history.requests
    history.now_ms += 5 * MINUTE

    early = feed.poll(T0 + timedelta(seconds=1.5))

    assert early == [] and history.requests == requests
    assert feed.seconds_to_next(T0 + timedelta(seconds=1.5)) == 0.5
    assert len(feed.poll(T0 + timedelta(seconds=2))) == 5


def test_after_a_disconnect_the_missed_candles_come_first_in_order(caplog):
    history = FakeCandleHistory(shipped_candles(500), now_ms=FIRST_MS + 10 * MINUTE)
    feed = CcxtFeed(history, lambda: {"BTC/USDT"}, poll_seconds=1)
    delivered = feed.poll(T0)
    history.down = True
    with caplog.at_level(logging.WARNING, logger="tradetape.feed"):
        for second in range(1, 4):
            history.now_ms += 20 * MINUTE
            delivered += feed.poll(T0 + timedelta(seconds=second))
    history.down = False
    history.now_ms += 20 * MINUTE
    delivered += feed.poll(T0 + timedelta(seconds=4))

    assert seen(delivered) == [exact(i) for i in range(9, 90)]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # one line when the outage starts, one when it ends
    assert "EXCHANGE_UNAVAILABLE" in messages[0]
    assert "answers again (after 3 failed polls)" in messages[1]
    assert feed.status()["last_error"] is None and feed.status()["lag_seconds"] == 0


def test_a_long_gap_is_taken_over_several_polls_without_waiting():
    history = FakeCandleHistory(shipped_candles(5000), now_ms=FIRST_MS + MINUTE)
    feed = CcxtFeed(history, lambda: {"BTC/USDT"}, poll_seconds=2, page=500,
                    max_pages_per_poll=3)
    feed.poll(T0)
    history.now_ms = FIRST_MS + 4000 * MINUTE

    first = feed.poll(T0 + timedelta(seconds=2))
    behind = feed.seconds_to_next(T0 + timedelta(seconds=2))
    rest = feed.poll(T0 + timedelta(seconds=2)) + feed.poll(T0 + timedelta(seconds=2))

    assert len(first) == 1500 and behind == 0
    assert seen(first + rest) == [exact(i) for i in range(1, 4000)]
    assert feed.seconds_to_next(T0 + timedelta(seconds=2)) == 2


class WindowedHistory(FakeCandleHistory):
    """Answers the window ``[since, since + limit minutes)`` (a gap there: nothing)."""

    def candles(self, pair, timeframe, since_ms, limit):
        page = super().candles(pair, timeframe, since_ms, limit)
        return [c for c in page if c.ts_ms < since_ms + limit * MINUTE]


def test_a_gap_longer_than_a_page_on_a_windowed_exchange_does_not_stall_the_pair():
    candles = shipped_candles(1000)
    history = WindowedHistory(candles[:20] + candles[400:], now_ms=FIRST_MS + 10 * MINUTE)
    feed = CcxtFeed(history, lambda: {"BTC/USDT"}, poll_seconds=1, page=100)
    delivered = feed.poll(T0)
    history.now_ms = FIRST_MS + 600 * MINUTE

    for second in range(1, 5):
        delivered += feed.poll(T0 + timedelta(seconds=second))

    assert seen(delivered) == [exact(i) for i in [*range(9, 20), *range(400, 600)]]


class TwoPairs(FakeCandleHistory):
    def candles_of(self, pair):
        if pair == "ETH/USDT":  # the same market, its prices halved
            return [c._replace(open=c.open / 2, high=c.high / 2, low=c.low / 2,
                               close=c.close / 2) for c in self.series]
        return self.series


def test_every_traded_pair_is_followed_and_candles_come_oldest_first():
    history = TwoPairs(shipped_candles(100), now_ms=FIRST_MS + 10 * MINUTE,
                       pairs=("BTC/USDT", "ETH/USDT"))
    pairs = {"BTC/USDT"}
    feed = CcxtFeed(history, lambda: pairs, poll_seconds=1)
    feed.poll(T0)
    pairs.add("ETH/USDT")
    history.now_ms += 3 * MINUTE

    candles = feed.poll(T0 + timedelta(seconds=1))

    assert [(c.ts_ms - FIRST_MS) // MINUTE for c in candles] == [10, 11, 12, 12]
    assert [c.pair for c in candles] == ["BTC/USDT", "BTC/USDT", "BTC/USDT", "ETH/USDT"]
    assert candles[-1].close == exact(12)[4] / 2


def test_a_pair_the_exchange_does_not_list_is_said_once_and_others_go_on(caplog):
    history = FakeCandleHistory(shipped_candles(100), now_ms=FIRST_MS + 10 * MINUTE)
    feed = CcxtFeed(history, lambda: {"BTC/USDT", "NOPE/USDT"}, poll_seconds=1)

    with caplog.at_level(logging.WARNING, logger="tradetape.feed"):
        first = feed.poll(T0)
        history.now_ms += MINUTE
        second = feed.poll(T0 + timedelta(seconds=1))

    assert seen(first + second) == [exact(9), exact(10)]
    assert [r.getMessage() for r in caplog.records if "NOPE/USDT" in r.getMessage()] != []
    assert len(caplog.records) == 1


def test_no_pair_traded_asks_the_exchange_for_no_candles():
    history = FakeCandleHistory(shipped_candles(10), now_ms=FIRST_MS + 5 * MINUTE)
    feed = CcxtFeed(history, set, poll_seconds=1)

    assert feed.poll(T0) == [] and history.requests == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2500), st.booleans()), min_size=1, max_size=25),
       st.integers(0, 59_999))
def test_every_closed_candle_is_delivered_exactly_once_in_order(steps, offset):
    """Whatever the exchange's clock does between polls (a simulator at any speed) and
    whenever it is down, the candles delivered are every closed one, once, in order."""
    history = FakeCandleHistory(shipped_candles(1100), now_ms=FIRST_MS + MINUTE + offset)
    feed = CcxtFeed(history, lambda: {"BTC/USDT"}, poll_seconds=1, page=1000,
                    max_pages_per_poll=2)
    delivered = feed.poll(T0)
    for second, (advance, down) in enumerate(steps, start=1):
        history.now_ms += advance * 1000
        history.down = down
        delivered += feed.poll(T0 + timedelta(seconds=second))
    history.down = False
    for extra in range(100):  # then it catches up
        delivered += feed.poll(T0 + timedelta(seconds=len(steps) + 1 + extra))

    closed = (history.now_ms - FIRST_MS) // MINUTE  # candles 0 .. closed-1 have closed
    assert seen(delivered) == [exact(i) for i in range(0, closed)]

"""The ccxt candle history on the real ``ccxt.binance`` class, with Binance's recorded
answers (tests/data/ccxt_recorded, from ccxt's own fixtures) in place of the network: the
requests ccxt builds, exact decimals out of its parser, and its errors as named codes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import ccxt
import pytest

from adapters.exchanges.ccxt_client import MARKETS, open_client
from adapters.marketdata.ccxt_history import CcxtCandleHistory
from domain.errors import DomainError
from domain.ports import HistoricCandle

RECORDED = json.loads((Path(__file__).parents[1] / "data" / "ccxt_recorded"
                       / "binance_btc_usdt_ohlcv.json").read_text())
KLINES = RECORDED["fetchOHLCV"]


class RecordedBinanceTransport:
    """Stands in for the network (ccxt's ``fetch``): Binance's recorded ``exchangeInfo``
    entry for BTCUSDT, its recorded klines, a fixed server time; or ``failure``."""

    def __init__(self, failure: Exception | None = None):
        self.failure, self.urls = failure, []

    def __call__(self, url, method="GET", headers=None, body=None):
        self.urls.append(url)
        if self.failure is not None:
            raise self.failure
        path = urlparse(url).path
        if path.endswith("/exchangeInfo"):
            return {"timezone": "UTC", "serverTime": 1706640000000, "rateLimits": [],
                    "exchangeFilters": [], "symbols": [RECORDED["market"]["info"]]}
        if path.endswith("/klines"):
            return KLINES["httpResponse"]
        if path.endswith("/time"):
            return {"serverTime": 1706640000123}
        raise AssertionError(f"unexpected request {url}")


@pytest.fixture(autouse=True)
def fresh_markets():
    MARKETS.clear()
    yield
    MARKETS.clear()


def history_on(transport, attempts: int = 1, sleeps=None) -> CcxtCandleHistory:
    client = open_client("binance", sandbox=False)
    client.fetch = transport
    return CcxtCandleHistory(client, sandbox=False, attempts=attempts,
                             sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_recorded_klines_come_out_exact_and_in_order():
    transport = RecordedBinanceTransport()
    history = history_on(transport)

    pair, timeframe, since, limit = KLINES["input"]
    candles = history.candles(pair, timeframe, since, limit)

    raw = KLINES["httpResponse"]
    assert candles == [HistoricCandle(row[0], *(Decimal(v) for v in row[1:6])) for row in raw]
    assert str(candles[0].open) == "43519.34000000"  # the exchange's text, never a float
    parsed = KLINES["parsedResponse"]  # ccxt's own reading agrees, as numbers
    assert [[c.ts_ms, *map(float, c[1:])] for c in candles] == parsed
    query = parse_qs(urlparse(transport.urls[-1]).query)
    assert query == {"symbol": ["BTCUSDT"], "interval": ["1h"], "startTime": [str(since)],
                     "limit": [str(limit)]}


def test_the_shared_markets_stay_as_ccxt_parses_them_for_other_clients():
    history_on(RecordedBinanceTransport()).prepare()

    other = open_client("binance", sandbox=False)
    other.fetch = RecordedBinanceTransport(failure=AssertionError("markets were cached"))
    from adapters.exchanges.ccxt_client import load_markets

    markets = load_markets(other, sandbox=False)
    assert isinstance(markets["BTC/USDT"]["limits"]["amount"]["min"], float)


def test_the_exchanges_clock_timeframes_page_size_and_pairs():
    history = history_on(RecordedBinanceTransport())

    assert history.exchange_time_ms() == 1706640000123
    assert history.timeframe_ms("1m") == 60_000 and history.timeframe_ms("1h") == 3_600_000
    assert history.page_limit() == 1000
    history.check_pair("BTC/USDT")
    with pytest.raises(DomainError) as unknown_pair:
        history.check_pair("NOPE/USDT")
    with pytest.raises(DomainError) as bad_timeframe:
        history.timeframe_ms("7m")

    assert unknown_pair.value.code == "PAIR_NOT_TRADED"
    assert bad_timeframe.value.code == "INVALID_TIMEFRAME"


def test_network_errors_are_retried_with_backoff_then_named():
    sleeps: list[float] = []
    transport = RecordedBinanceTransport(failure=ccxt.NetworkError("connection refused"))
    history = history_on(transport, attempts=3, sleeps=sleeps)

    with pytest.raises(DomainError) as caught:
        history.exchange_time_ms()

    assert caught.value.code == "EXCHANGE_UNAVAILABLE"
    assert len(transport.urls) == 3 and len(sleeps) == 2
    assert "Traceback" not in str(caught.value)


def test_a_refusal_is_not_retried():
    transport = RecordedBinanceTransport(failure=ccxt.BadSymbol("binance Invalid symbol."))
    history = history_on(transport, attempts=5)

    with pytest.raises(DomainError) as caught:
        history.exchange_time_ms()

    assert caught.value.code == "PAIR_NOT_TRADED" and len(transport.urls) == 1


def test_an_exchange_without_a_clock_cannot_feed_live_candles():
    client = open_client("binance", sandbox=False)
    client.has = {**client.has, "fetchTime": False}

    with pytest.raises(DomainError) as caught:
        CcxtCandleHistory(client, sandbox=False).check_live_feed_support()

    assert caught.value.code == "EXCHANGE_NOT_SUPPORTED"

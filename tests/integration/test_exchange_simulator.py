"""The exchange simulator (tests/exchange_simulator) through the real ccxt binance class:
markets, clock and candles first; then orders, fills, fees and balances; then the faults a
live venue must survive. Expected prices come from the candle file read here with ``csv``."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from adapters.exchanges.ccxt_client import ApiCredentials, open_client
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator

MINUTE = 60_000


def candle_rows(path=BTC_USDT_CANDLES, count: int = 50) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return [row for _, row in zip(range(count), csv.DictReader(file), strict=False)]


ROWS = candle_rows()
T0 = int(ROWS[0]["timestamp_ms"])


def client_for(sim, *, secret: str | None = None, timeout_ms: int = 10_000):
    credentials = ApiCredentials(sim.api_key, secret or sim.secret)
    client = open_client("binance", sandbox=True, credentials=credentials,
                         sandbox_host=sim.url, timeout_ms=timeout_ms)
    client.load_markets()
    return client


@pytest.fixture
def sim():
    with running_simulator(speed=0, balances={"USDT": "10000", "BTC": "0.5"}) as handle:
        yield handle


@pytest.fixture
def client(sim):
    return client_for(sim)


def test_markets_carry_binance_filters_as_ccxt_precision_and_limits(client):
    market = client.market("BTC/USDT")
    assert market["id"] == "BTCUSDT" and market["spot"] and market["active"]
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.00001
    assert market["limits"]["amount"]["min"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5
    assert client.amount_to_precision("BTC/USDT", 0.0012349) == "0.00123"


def test_time_follows_the_simulated_clock(sim, client):
    assert client.fetch_time() == T0
    sim.advance(90_000)
    assert client.fetch_time() == T0 + 90_000


def test_ohlcv_shows_closed_candles_and_the_open_one_at_its_open(sim, client):
    sim.advance(3 * MINUTE + 20_000)  # three candles closed, the fourth open for 20 s
    candles = client.fetch_ohlcv("BTC/USDT", "1m")
    assert [c[0] for c in candles] == [int(r["timestamp_ms"]) for r in ROWS[:4]]
    for candle, row in zip(candles[:3], ROWS[:3], strict=True):
        assert candle[1:5] == [float(row[k]) for k in ("open", "high", "low", "close")]
    still_open = ROWS[3]
    assert candles[3][1:6] == [float(still_open["open"])] * 4 + [0.0]


def test_ohlcv_pages_by_since_and_limit(sim, client):
    sim.advance(40 * MINUTE)
    page = client.fetch_ohlcv("BTC/USDT", "1m", since=int(ROWS[10]["timestamp_ms"]), limit=5)
    assert [c[0] for c in page] == [int(r["timestamp_ms"]) for r in ROWS[10:15]]
    assert [Decimal(str(c[4])) for c in page] == [Decimal(r["close"]) for r in ROWS[10:15]]


def test_balance_is_the_simulators_account(client):
    balance = client.fetch_balance()
    assert balance["USDT"]["free"] == 10000 and balance["BTC"]["free"] == 0.5

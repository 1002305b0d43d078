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


# --- orders, fills, fees, balances ------------------------------------------------------------

# From the file: candle 1 (00:01) never trades at 109500 (low 109550.46); candle 2 (00:02)
# does (low 109470.92) after opening above it (109550.46), so a buy at 109500 fills there.
BUY_PRICE = 109500


def test_the_file_holds_what_the_fill_tests_rely_on():
    assert Decimal(ROWS[1]["low"]) > BUY_PRICE
    assert Decimal(ROWS[2]["open"]) > BUY_PRICE >= Decimal(ROWS[2]["low"])


def test_limit_buy_rests_until_a_closed_candle_trades_through_it(sim, client):
    order = client.create_order("BTC/USDT", "limit", "buy", 0.002, BUY_PRICE,
                                {"clientOrderId": "tt-rest-1"})
    assert order["status"] == "open" and order["clientOrderId"] == "tt-rest-1"
    assert [o["id"] for o in client.fetch_open_orders("BTC/USDT")] == [order["id"]]
    assert client.fetch_balance()["USDT"]["used"] == 219.0  # 0.002 × 109500 locked

    sim.advance(2 * MINUTE + 59_000)  # candle 2 is open but not closed: no fill yet
    assert client.fetch_order(order["id"], "BTC/USDT")["status"] == "open"
    sim.advance(1_000)  # candle 2 closes
    filled = client.fetch_order(order["id"], "BTC/USDT")
    assert filled["status"] == "closed" and filled["filled"] == 0.002
    assert filled["average"] == BUY_PRICE
    assert client.fetch_open_orders("BTC/USDT") == []

    [trade] = client.fetch_my_trades("BTC/USDT")
    assert trade["order"] == order["id"] and trade["side"] == "buy"
    assert trade["price"] == BUY_PRICE and trade["amount"] == 0.002
    assert trade["fee"] == {"currency": "BTC", "cost": 0.000002}  # 0.1 % of the amount, in BTC
    assert trade["timestamp"] == int(ROWS[2]["timestamp_ms"]) + MINUTE - 1
    balance = client.fetch_balance()
    assert balance["BTC"]["total"] == 0.501998  # 0.5 + 0.002 - 0.000002 fee
    assert balance["USDT"]["total"] == 9781.0 and balance["USDT"]["used"] == 0


def test_market_order_fills_at_the_open_of_the_current_candle_fee_in_quote(sim, client):
    sim.advance(5 * MINUTE + 30_000)
    order = client.create_order("BTC/USDT", "market", "sell", 0.01, None,
                                {"clientOrderId": "tt-market-1"})
    price = Decimal(ROWS[5]["open"])
    assert order["status"] == "closed" and Decimal(str(order["average"])) == price
    ledger = sim.ledger()
    [trade] = ledger.trades
    assert (trade.side, trade.qty, trade.price) == ("SELL", Decimal("0.01"), price)
    assert trade.commission_asset == "USDT"
    assert trade.commission == (price * Decimal("0.01") * Decimal("0.001")).quantize(
        Decimal("0.00000001"))
    assert ledger.change("USDT") == price * Decimal("0.01") - trade.commission
    assert ledger.change("BTC") == Decimal("-0.01")


def test_cancel_releases_the_locked_quote(sim, client):
    order = client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                                {"clientOrderId": "tt-cancel-1"})
    assert client.fetch_balance()["USDT"]["used"] == 100.0
    cancelled = client.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert client.fetch_balance()["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    with pytest.raises(ccxt_error("OrderNotFound")):
        client.cancel_order(order["id"], "BTC/USDT")


def test_orders_are_found_by_client_order_id_or_not_at_all(client):
    order = client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                                {"clientOrderId": "tt-find-1"})
    found = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-find-1"})
    assert found["id"] == order["id"] and found["status"] == "open"
    with pytest.raises(ccxt_error("OrderNotFound")):
        client.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-never-sent"})


def test_a_client_order_id_used_twice_is_refused_and_both_attempts_are_counted(sim, client):
    client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000, {"clientOrderId": "tt-dup"})
    with pytest.raises(ccxt_error("InvalidOrder"), match="Duplicate order sent"):
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 99000, {"clientOrderId": "tt-dup"})
    assert sim.client_order_ids_seen()["tt-dup"] == 2
    assert len(client.fetch_open_orders("BTC/USDT")) == 1


def test_an_order_beyond_the_free_balance_is_refused_as_insufficient_funds(client):
    with pytest.raises(ccxt_error("InsufficientFunds")):
        client.create_order("BTC/USDT", "limit", "buy", 0.10001, 100000)  # 10,001 > 10,000
    with pytest.raises(ccxt_error("InsufficientFunds")):
        client.create_order("BTC/USDT", "market", "sell", 0.6)  # holds 0.5


def test_orders_breaking_the_filters_get_binances_filter_failures(client):
    with pytest.raises(ccxt_error("BadRequest"), match="NOTIONAL"):  # 4.99 USDT < 5
        client.create_order("BTC/USDT", "limit", "buy", 0.00001, 499000 / 1000)
    signed = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
              "newClientOrderId": "tt-raw-1"}
    with pytest.raises(ccxt_error("InvalidOrder"), match="LOT_SIZE"):
        client.privatePostOrder({**signed, "quantity": "0.000015", "price": "100000"})
    with pytest.raises(ccxt_error("InvalidOrder"), match="PRICE_FILTER"):
        client.privatePostOrder({**signed, "quantity": "0.001", "price": "100000.005"})


def test_wrong_keys_are_refused_as_authentication_errors(sim):
    with pytest.raises(ccxt_error("AuthenticationError")):
        client_for(sim, secret="not-the-secret").fetch_balance()
    stranger = open_client("binance", sandbox=True, sandbox_host=sim.url,
                           credentials=ApiCredentials("someone-else", sim.secret))
    with pytest.raises(ccxt_error("AuthenticationError")):
        stranger.fetch_balance()


def ccxt_error(name: str) -> type[Exception]:
    import ccxt

    return getattr(ccxt, name)

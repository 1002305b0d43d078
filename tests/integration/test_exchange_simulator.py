"""The exchange simulator (tests/exchange_simulator) through the real ccxt binance class:
markets, clock and candles first; then orders, fills, fees and balances; then the faults a
live venue must survive. Expected prices come from the candle file read here with ``csv``."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest

from adapters.exchanges.ccxt_client import ApiCredentials, open_client
from tests.exchange_simulator import (
    BTC_USDT_CANDLES,
    MarketFilters,
    running_simulator,
    simulator_process,
)
from tests.exchange_simulator.runner import ROOT

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


def test_a_test_can_give_a_pair_its_own_filters():
    rules = MarketFilters(tick_size=Decimal("0.1"), step_size=Decimal("0.001"),
                          min_qty=Decimal("0.002"), min_notional=Decimal("10"))
    with running_simulator(filters={"BTC/USDT": rules}) as sim:
        market = client_for(sim).market("BTC/USDT")
    assert (market["precision"]["price"], market["precision"]["amount"]) == (0.1, 0.001)
    assert (market["limits"]["amount"]["min"], market["limits"]["cost"]["min"]) == (0.002, 10)


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

# From the file: candles 0 and 1 (00:00, 00:01) never trade at 109500 (lows 109608 and
# 109550.46); candle 2 (00:02) does (low 109470.92) after opening above it (109550.46), so a
# buy at 109500 fills there, at its price.
BUY_PRICE = 109500


def test_the_file_holds_what_the_fill_tests_rely_on():
    assert Decimal(ROWS[0]["low"]) > BUY_PRICE and Decimal(ROWS[1]["low"]) > BUY_PRICE
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


def test_a_market_buy_for_a_quote_amount_buys_what_it_pays_for_in_whole_steps(sim, client):
    # given a price, ccxt's binance turns a market buy into quoteOrderQty = amount × price
    order = client.create_order("BTC/USDT", "market", "buy", 0.001, 100000)
    price = Decimal(ROWS[0]["open"])
    bought = (Decimal(100) / price).quantize(Decimal("0.00001"), rounding="ROUND_DOWN")
    assert Decimal(str(order["filled"])) == bought == Decimal("0.00091")
    assert sim.ledger().change("USDT") == -(bought * price)


def test_cancel_releases_the_locked_quote(sim, client):
    order = client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                                {"clientOrderId": "tt-cancel-1"})
    assert client.fetch_balance()["USDT"]["used"] == 100.0
    cancelled = client.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert client.fetch_balance()["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    with pytest.raises(ccxt_error("OrderNotFound")):
        client.cancel_order(order["id"], "BTC/USDT")
    for price in (90000, 91000):
        client.create_order("BTC/USDT", "limit", "buy", 0.001, price)
    assert len(client.cancel_all_orders("BTC/USDT")) == 2
    assert client.fetch_open_orders("BTC/USDT") == []
    assert client.fetch_balance()["USDT"]["free"] == 10000.0


def test_orders_are_found_by_client_order_id_or_not_at_all(client):
    order = client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                                {"clientOrderId": "tt-find-1"})
    found = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-find-1"})
    assert found["id"] == order["id"] and found["status"] == "open"
    with pytest.raises(ccxt_error("OrderNotFound")):
        client.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-never-sent"})


def test_order_and_trade_history_pages_by_time(sim, client):
    client.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "h-1"})
    sim.advance(10 * MINUTE)
    client.create_order("BTC/USDT", "market", "buy", 0.002, None, {"clientOrderId": "h-2"})
    client.create_order("BTC/USDT", "limit", "buy", 0.001, 90000, {"clientOrderId": "h-3"})
    orders = client.fetch_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in orders] == ["h-1", "h-2", "h-3"]
    assert [o["clientOrderId"] for o in client.fetch_closed_orders("BTC/USDT")] == ["h-1", "h-2"]
    later = client.fetch_my_trades("BTC/USDT", since=T0 + MINUTE)
    assert [t["amount"] for t in later] == [0.002]
    client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    assert [o["clientOrderId"] for o in client.fetch_open_orders()] == ["h-3"]


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


def test_signed_requests_need_a_timestamp_near_the_wall_or_the_simulated_clock(sim, client):
    client.options["adjustForTimeDifference"] = True  # ccxt then signs with the simulated time
    client.load_time_difference()
    assert client.fetch_balance()["USDT"]["free"] == 10000
    client.options["timeDifference"] = 3_600_000  # an hour behind both clocks
    with pytest.raises(ccxt_error("InvalidNonce"), match="-1021"):
        client.fetch_balance()


def ccxt_error(name: str) -> type[Exception]:
    import ccxt

    return getattr(ccxt, name)


# --- faults -----------------------------------------------------------------------------------


@pytest.fixture
def impatient(sim):
    """A client that gives up after 1 s (the simulator's timeouts hold 3 s)."""
    return client_for(sim, timeout_ms=1000)


def test_a_timeout_that_executes_leaves_the_order_on_the_exchange(sim, impatient):
    sim.timeout(seconds=3, execute=True)
    with pytest.raises(ccxt_error("RequestTimeout")):
        impatient.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                               {"clientOrderId": "tt-timeout-1"})
    found = impatient.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-timeout-1"})
    assert found["status"] == "open"
    assert [a.fault for a in sim.ledger().attempts] == ["timeout"]


def test_a_timeout_that_executes_late_places_the_order_after_the_client_gave_up(sim, impatient):
    sim.timeout(seconds=3, execute=True, late=True)
    with pytest.raises(ccxt_error("RequestTimeout")):
        impatient.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                               {"clientOrderId": "tt-late-1"})
    assert impatient.fetch_open_orders("BTC/USDT") == []  # not yet
    placed = eventually(lambda: impatient.fetch_order(None, "BTC/USDT",
                                                      {"clientOrderId": "tt-late-1"}))
    assert placed["status"] == "open"


def test_a_timeout_that_does_not_execute_leaves_nothing(sim, impatient):
    sim.timeout(seconds=3, execute=False)
    with pytest.raises(ccxt_error("RequestTimeout")):
        impatient.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                               {"clientOrderId": "tt-timeout-2"})
    with pytest.raises(ccxt_error("OrderNotFound")):
        impatient.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-timeout-2"})
    [attempt] = sim.ledger().attempts
    assert (attempt.client_order_id, attempt.outcome) == ("tt-timeout-2", "not_executed")


def test_a_lost_response_is_a_network_error_after_the_order_was_placed(sim, client):
    sim.lose_response()
    with pytest.raises(ccxt_error("NetworkError")) as raised:
        client.create_order("BTC/USDT", "market", "buy", 0.001, None,
                            {"clientOrderId": "tt-lost-1"})
    assert not isinstance(raised.value, ccxt_error("RequestTimeout"))
    found = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-lost-1"})
    assert found["status"] == "closed" and found["filled"] == 0.001
    assert [t.client_order_id for t in sim.ledger().trades] == ["tt-lost-1"]


@pytest.mark.parametrize("execute", [True, False])
def test_binances_execution_status_unknown_is_a_request_timeout_either_way(sim, client, execute):
    sim.backend_timeout(execute=execute)
    with pytest.raises(ccxt_error("RequestTimeout"), match="-1007"):
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                            {"clientOrderId": "tt-unknown-1"})
    placed = [o["clientOrderId"] for o in client.fetch_open_orders("BTC/USDT")]
    assert placed == (["tt-unknown-1"] if execute else [])


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limits_answer_with_retry_after_and_do_nothing(sim, client, status):
    # ccxt's binance raises DDoSProtection for both (RateLimitExceeded is its subclass)
    sim.rate_limit(path="/api/v3/order", status=status, retry_after=3)
    with pytest.raises(ccxt_error("DDoSProtection"), match=str(status)):
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000,
                            {"clientOrderId": "tt-limited-1"})
    assert client.fetch_open_orders("BTC/USDT") == []
    sim.rate_limit(path="/api/v3/time", status=status, retry_after=3)
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{sim.url}/api/v3/time", timeout=5)
    assert raised.value.code == status and raised.value.headers["Retry-After"] == "3"
    assert json.loads(raised.value.read())["code"] == -1003


def test_faults_hit_only_their_requests_and_only_as_often_as_told(sim, client):
    sim.rate_limit(times=2, path="/api/v3/order")
    assert client.fetch_time() == T0  # another path: untouched
    for _ in range(2):
        with pytest.raises(ccxt_error("DDoSProtection")):
            client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000)
    assert client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000)["status"] == "open"


def test_an_exchange_gone_down_refuses_connections_until_it_comes_up(sim, client):
    sim.go_down()
    with pytest.raises(ccxt_error("NetworkError")):
        client.fetch_time()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(sim.url.rsplit(":", 1)[1])), timeout=2)
    sim.come_up()
    assert client.fetch_time() == T0


def test_an_exchange_down_for_a_while_comes_back_by_itself(sim, client):
    sim.go_down(seconds=0.3)
    with pytest.raises(ccxt_error("NetworkError")):
        client.fetch_time()
    assert eventually(client.fetch_time) == T0


def eventually(call, attempts: int = 100):
    for _ in range(attempts):
        try:
            return call()
        except Exception:
            time.sleep(0.05)
    return call()


# --- clock, processes, pairs, fee modes ------------------------------------------------------


def test_a_running_clock_moves_speed_times_faster_than_the_wall():
    with running_simulator(speed=600) as sim:
        client = client_for(sim)
        first = client.fetch_time()
        time.sleep(0.2)  # at least 120 simulated seconds
        assert client.fetch_time() >= first + 120_000
        assert len(client.fetch_ohlcv("BTC/USDT", "1m")) >= 2


def test_the_simulator_in_its_own_process_outlives_a_client_killed_mid_request(tmp_path):
    with simulator_process(speed=0) as sim:
        sim.timeout(seconds=5, execute=True)
        victim = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT, sim.url, sim.api_key, sim.secret],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert victim.stdout.readline().strip() == "sending"
        deadline = time.monotonic() + 30
        while not sim.client_order_ids_seen() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        client = client_for(sim)
        order = client.fetch_order(None, "BTC/USDT", {"clientOrderId": "tt-killed-1"})
        assert order["status"] == "open"  # the order was placed before the client died
        assert sim.client_order_ids_seen() == {"tt-killed-1": 1}


KILLED_CLIENT = """
import sys
from adapters.exchanges.ccxt_client import ApiCredentials, open_client
url, key, secret = sys.argv[1:]
client = open_client("binance", sandbox=True, sandbox_host=url,
                     credentials=ApiCredentials(key, secret), timeout_ms=60_000)
client.load_markets()
print("sending", flush=True)
client.create_order("BTC/USDT", "limit", "buy", 0.001, 100000, {"clientOrderId": "tt-killed-1"})
"""


def write_candles(path, rows) -> str:
    lines = ["timestamp_ms,open,high,low,close,volume"]
    lines += [f"{T0 + i * MINUTE},{','.join(ohlc)},1" for i, ohlc in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


ETH_ROWS = [  # open, high, low, close
    ("2000", "2010", "1990", "2000"),
    ("2000", "2005", "1995", "2000"),
    ("1950", "1960", "1940", "1955"),  # opens below 1980: a buy at 1980 fills at 1950
    ("1955", "2100", "1950", "2090"),  # trades through 2050: a sell at 2050 fills at 2050
    ("2090", "2095", "2085", "2090"),
]


@pytest.fixture
def two_pairs(tmp_path):
    eth = write_candles(tmp_path / "eth.csv", ETH_ROWS)
    candles = {"BTC/USDT": str(BTC_USDT_CANDLES), "ETH/USDT": eth}
    with running_simulator(candles, balances={"USDT": "1000"}, fee_mode="quote") as sim:
        yield sim


def test_two_pairs_share_the_accounts_quote_balance(two_pairs):
    client = client_for(two_pairs)
    assert {"BTC/USDT", "ETH/USDT"} <= set(client.markets)
    assert client.market("ETH/USDT")["precision"]["amount"] == 0.0001
    client.create_order("ETH/USDT", "limit", "buy", 0.4, 1980)  # locks 792 + 0.792 fee
    with pytest.raises(ccxt_error("InsufficientFunds")):
        client.create_order("BTC/USDT", "limit", "buy", 0.0021, 100000)  # 210 > 207.208 free
    assert client.fetch_balance()["USDT"]["free"] == 207.208


def test_a_gap_fills_at_the_open_and_quote_mode_charges_both_sides_in_quote(two_pairs):
    client = client_for(two_pairs)
    buy = client.create_order("ETH/USDT", "limit", "buy", 0.1, 1980, {"clientOrderId": "e-b"})
    sell_price = 2050
    two_pairs.advance(3 * MINUTE)  # candle 2 (the gap) closed
    assert client.fetch_order(buy["id"], "ETH/USDT")["average"] == 1950
    client.create_order("ETH/USDT", "limit", "sell", 0.1, sell_price, {"clientOrderId": "e-s"})
    two_pairs.advance(MINUTE - 1)  # placed at candle 3's open: it takes part in candle 3
    assert client.fetch_order(None, "ETH/USDT", {"clientOrderId": "e-s"})["status"] == "open"
    two_pairs.advance(1)  # candle 3 closed
    ledger = two_pairs.ledger()
    bought, sold = ledger.trades
    assert (bought.price, bought.commission, bought.commission_asset) == (
        Decimal("1950"), Decimal("0.19500000"), "USDT")
    assert (sold.price, sold.commission, sold.commission_asset) == (
        Decimal("2050"), Decimal("0.20500000"), "USDT")
    assert ledger.change("ETH") == 0
    # 205 - 195 - 0.195 - 0.205: the exchange's own realized P/L
    assert ledger.realized_pnl("USDT") == Decimal("9.6")
    assert ledger.quote_flow("ETH/USDT") == Decimal("9.6") and ledger.base_flow("ETH/USDT") == 0
    assert ledger.quote_flow("BTC/USDT") == 0

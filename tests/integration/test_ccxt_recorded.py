"""ccxt's recorded binance and bybit answers, through the real ccxt classes, into the port.

Expected values are read off the recorded bodies (tests/data/ccxt-static), never from our
code. Where a test joins two recordings (an order and the trades of another order), the
edit is said where it is made.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from adapters.exchanges.ccxt_venue import CcxtExchange
from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import MarketRules, OrderRequest
from tests.ccxt_replay import FakeHttp, offline_client, query_of, recorded_case

ORDER_ID = UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def venue(exchange_id: str) -> tuple[CcxtExchange, FakeHttp]:
    client = offline_client(exchange_id)
    http = FakeHttp(client)
    return CcxtExchange(client, sleep=lambda _: None), http


def body(exchange_id: str, method: str, description: str):
    return recorded_case(exchange_id, method, description)["httpResponse"]


# --- balances and markets ---------------------------------------------------------------------


def test_binance_spot_balance_is_exact_decimal():
    exchange, http = venue("binance")
    http.on("GET", "/api/v3/account", body("binance", "fetchBalance", "Spot balance"))
    balances = exchange.fetch_balance()
    assert balances["LTC"].free == Decimal("0.91974100")
    assert balances["ETH"].free == Decimal("0.02229833")
    assert balances["BTC"].total == 0
    assert all(type(b.free) is Decimal and type(b.locked) is Decimal for b in balances.values())


def test_bybit_unified_balance_keeps_locked_apart():
    exchange, http = venue("bybit")
    http.on("GET", "/v5/account/wallet-balance",
            body("bybit", "fetchBalance", "balance after availableToWithdraw update"))
    usdc = exchange.fetch_balance()["USDC"]
    assert usdc.locked == Decimal("3.18541012")
    assert usdc.free == Decimal("5845.01472906")


@pytest.mark.parametrize(("exchange_id", "pair", "rules"), [
    # binance LTC/USDT: precision 3 and 2 decimals, limits amount.min 0.001, cost.min 5
    ("binance", "LTC/USDT", MarketRules(Decimal("0.001"), Decimal("0.01"), Decimal("0.001"),
                                        Decimal("5"))),
    # bybit BTC/USDT: basePrecision 0.000001, tickSize 0.1, minOrderQty 0.000011, minOrderAmt 5
    ("bybit", "BTC/USDT", MarketRules(Decimal("0.000001"), Decimal("0.1"), Decimal("0.000011"),
                                      Decimal("5"))),
])
def test_market_rules_come_from_the_exchange_markets(exchange_id, pair, rules):
    exchange, _ = venue(exchange_id)
    assert exchange.market_rules(pair) == rules


def test_a_pair_the_exchange_does_not_list_is_named():
    exchange, _ = venue("binance")
    with pytest.raises(DomainError) as refused:
        exchange.market_rules("SOL/EUR")
    assert refused.value.code == "PAIR_NOT_TRADED"


# --- orders and their fills -------------------------------------------------------------------


def test_binance_closed_order_is_filled_with_its_trades_real_fee():
    exchange, http = venue("binance")
    trades = body("binance", "fetchMyTrades", "Spot private trade")
    trades[0]["orderId"] = "3397148653"  # edit: the recorded trade re-keyed to this order
    http.on("GET", "/api/v3/order", body("binance", "fetchOrder", "Fetch spot closed order"))
    http.on("GET", "/api/v3/myTrades", trades)
    order = exchange.fetch_order("3397148653", "LTC/USDT")
    assert order.status is OrderStatus.FILLED
    assert order.exchange_order_id == "3397148653"
    assert order.client_order_id == "x-R4BD3S825806ed40c861260428a48c"  # not ours: as is
    (trade,) = order.trades
    assert trade.trade_id == "309520010"
    assert (trade.price, trade.amount) == (Decimal("69.63"), Decimal("0.2"))
    assert (trade.fee, trade.fee_currency) == (Decimal("0.013926"), "USDT")
    assert trade.fee_quote is None  # a fee in quote needs no conversion


def test_binance_open_and_cancelled_orders():
    exchange, http = venue("binance")
    http.on("GET", "/api/v3/openOrders",
            body("binance", "fetchOpenOrders", "Fetch spot open orders"))
    http.on("GET", "/api/v3/order", body("binance", "fetchOrders", "fetch spot orders")[0])
    (resting,) = exchange.fetch_open_orders("LTC/USDT")
    assert (resting.exchange_order_id, resting.status) == ("3811057334", OrderStatus.ACCEPTED)
    cancelled = exchange.fetch_order("3854801792", "LTC/USDT")
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.trades == ()
    assert http.count("GET", "/myTrades") == 0  # nothing filled: no fills asked for


def test_bybit_fee_in_base_leaves_less_base_held():
    exchange, http = venue("bybit")
    order = body("bybit", "fetchClosedOrder", "fetchOrder created using the cost")
    trades = body("bybit", "fetchMyTrades", "spot private trade")
    trades["result"]["list"][0]["orderId"] = "1823584718894229760"  # edit: re-keyed
    http.on("GET", "/v5/order/", order).on("GET", "/v5/execution/list", trades)
    filled = exchange.fetch_order("1823584718894229760", "BTC/USDT")
    assert filled.status is OrderStatus.FILLED
    (trade,) = filled.trades
    assert (trade.price, trade.amount) == (Decimal("29708.7"), Decimal("0.000336"))
    assert (trade.fee, trade.fee_currency) == (Decimal("0.000000336"), "BTC")
    # 0.000336 bought, 0.000000336 of it paid as the fee: 0.000335664 BTC held.
    assert trade.base_held_change(OrderSide.BUY, "BTC") == Decimal("0.000335664")
    assert trade.fee_in_quote("BTC", "USDT") == Decimal("0.000000336") * Decimal("29708.7")


def test_fee_in_a_third_asset_is_converted_at_the_trades_minute():
    exchange, http = venue("binance")
    trades = body("binance", "fetchMyTrades", "Spot private trade")
    # edit: charged in BTC (a third asset for LTC/USDT) at the open of a recorded candle
    trades[0].update(orderId="3397148653", commissionAsset="BTC", commission="0.00000032",
                     time="1706630400000")
    http.on("GET", "/api/v3/order", body("binance", "fetchOrder", "Fetch spot closed order"))
    http.on("GET", "/api/v3/myTrades", trades)
    http.on("GET", "/api/v3/klines",
            body("binance", "fetchOHLCV", "Spot OHLCV with since and limit"))
    (trade,) = exchange.fetch_order("3397148653", "LTC/USDT").trades
    assert (trade.fee, trade.fee_currency) == (Decimal("0.00000032"), "BTC")
    assert trade.fee_conversion_rate == Decimal("43488.71")  # that candle's close, BTC/USDT
    assert trade.fee_quote == Decimal("0.00000032") * Decimal("43488.71")
    assert query_of(http.sent[-1][1])["symbol"] == "BTCUSDT"


def test_bybit_create_sends_our_client_id_and_truncated_amount():
    exchange, http = venue("bybit")
    http.on("POST", "/v5/order/create", body("bybit", "createOrder", "create spot order"))
    order = exchange.create_order(OrderRequest(ORDER_ID.hex, "LTC/USDT", OrderSide.BUY,
                                               OrderType.LIMIT, Decimal("0.123456789"),
                                               Decimal("60.004")))
    assert (order.status, order.exchange_order_id) == (OrderStatus.ACCEPTED,
                                                       "1609920528435648000")
    assert order.client_order_id == ORDER_ID.hex  # the engine's id, not the exchange's
    sent = http.last_body
    assert sent["orderLinkId"] == "tt" + ORDER_ID.hex
    assert sent["qty"] == "0.12345"  # LTC step 0.00001, rounded down, never up
    assert sent["price"] == "60"  # tick 0.01


@pytest.mark.parametrize(("amount", "price", "code"), [
    (Decimal("0.05"), Decimal("50"), "ORDER_BELOW_MIN_NOTIONAL"),  # 2.5 USDT < 5
    (Decimal("0.0009"), Decimal("9000"), "ORDER_BELOW_MIN_AMOUNT"),  # < one step of 0.001
])
def test_an_order_below_the_minimums_is_rejected_without_a_request(amount, price, code):
    exchange, http = venue("binance")
    order = exchange.create_order(OrderRequest(ORDER_ID.hex, "LTC/USDT", OrderSide.BUY,
                                               OrderType.LIMIT, amount, price))
    assert order.status is OrderStatus.REJECTED
    assert order.reason.startswith(f"{code}: ")
    assert http.sent == []


def test_an_order_on_a_pair_the_exchange_does_not_list_is_rejected_unsent():
    exchange, http = venue("binance")  # the recorded markets have no SOL/USDT
    order = exchange.create_order(OrderRequest(ORDER_ID.hex, "SOL/USDT", OrderSide.BUY,
                                               OrderType.LIMIT, Decimal("1"), Decimal("200")))
    assert order.status is OrderStatus.REJECTED
    assert order.reason.startswith("PAIR_NOT_TRADED: ")
    assert http.sent == []


def test_bybit_finds_an_order_by_client_id_in_its_open_then_closed_lists():
    exchange, http = venue("bybit")
    resting = body("bybit", "fetchOpenOrder", "spot open order")
    resting["result"]["list"][0]["orderLinkId"] = "tt" + ORDER_ID.hex  # edit: ours
    empty = {"retCode": "0", "retMsg": "OK", "result": {"category": "spot", "list": []}}
    http.on("GET", "/v5/order/realtime", resting).on("GET", "/v5/order/history", empty)
    found = exchange.fetch_order_by_client_id(ORDER_ID.hex, "LTC/USDT")
    assert (found.exchange_order_id, found.status) == ("1620421817225451008",
                                                       OrderStatus.ACCEPTED)
    assert found.client_order_id == ORDER_ID.hex  # mapped back to the engine's id
    assert query_of(http.sent[0][1])["orderLinkId"] == "tt" + ORDER_ID.hex
    http.routes[0] = ("GET", "/v5/order/realtime", empty)
    assert exchange.fetch_order_by_client_id(ORDER_ID.hex, "LTC/USDT") is None
    assert http.count("GET", "/v5/order/history") == 1  # closed orders asked before "unknown"


def test_trading_through_ccxt_leaves_the_threads_decimal_arithmetic_as_it_was():
    """ccxt's rounding sets the thread's decimal context (half-up, Underflow trapped); the
    engine computing in that thread after an order must round as a backtest does."""
    import decimal

    before = decimal.getcontext().copy()
    exchange, http = venue("bybit")
    http.on("POST", "/v5/order/create", body("bybit", "createOrder", "create spot order"))
    exchange.create_order(OrderRequest(ORDER_ID.hex, "LTC/USDT", OrderSide.BUY,
                                       OrderType.LIMIT, Decimal("0.123456789"), Decimal("60.004")))
    exchange.market_rules("LTC/USDT")
    after = decimal.getcontext()
    assert (after.rounding, after.prec) == (before.rounding, before.prec)
    assert {t for t, on in after.traps.items() if on} == {t for t, on in before.traps.items() if on}
    # 29 digits rounded to 28: half-even (the default) keeps ...000, half-up would give ...001
    assert Decimal("1.0000000000000000000000000005") + 0 == Decimal("1.000000000000000000000000000")


def test_every_client_open_client_builds_rounds_without_touching_the_threads_decimals():
    import decimal

    from adapters.exchanges.ccxt_client import open_client

    client = open_client("binance", sandbox=False)
    client.set_markets(list(offline_client("binance").markets.values()))
    before = decimal.getcontext().copy()
    assert client.amount_to_precision("LTC/USDT", "0.12345") == "0.123"
    assert client.price_to_precision("LTC/USDT", "60.005") == "60.01"  # ccxt's half-up
    assert decimal.getcontext().rounding == before.rounding == decimal.ROUND_HALF_EVEN
    assert not decimal.getcontext().traps[decimal.Underflow]

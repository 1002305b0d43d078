"""CcxtExchange against the local exchange simulator's faults: what the exchange's own
ledger says happened is what the venue reports, and no order is placed twice."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from adapters.exchanges.ccxt_client import ApiCredentials
from adapters.exchanges.ccxt_venue import CcxtExchange
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import OrderRequest
from tests.exchange_simulator import running_simulator


@pytest.fixture
def sim():
    with running_simulator(speed=0, balances={"USDT": "10000", "BTC": "0.5"}) as handle:
        handle.advance(5 * 60_000)
        yield handle


def venue_on(sim, *, timeout_ms: int = 10_000) -> tuple[CcxtExchange, list[float]]:
    sleeps: list[float] = []
    exchange = CcxtExchange.open("binance", sandbox=True, sandbox_host=sim.url,
                                 credentials=ApiCredentials(sim.api_key, sim.secret),
                                 timeout_ms=timeout_ms, sleep=sleeps.append)
    return exchange, sleeps


def limit_buy(price: str = "100000", amount: str = "0.001") -> OrderRequest:
    return OrderRequest(uuid.uuid4().hex, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT,
                        Decimal(amount), Decimal(price))


def test_a_create_that_timed_out_after_executing_is_found_not_placed_again(sim):
    exchange, _ = venue_on(sim, timeout_ms=500)  # the simulator holds the answer 1.5 s
    sim.timeout(seconds=1.5, execute=True)
    wanted = limit_buy()
    placed = exchange.create_order(wanted)
    assert placed.status is OrderStatus.ACCEPTED
    assert placed.client_order_id == wanted.client_order_id
    ledger = sim.ledger()
    assert ledger.client_order_ids_seen() == {"tt" + wanted.client_order_id: 1}
    assert [o["orderId"] for o in ledger.orders] == [int(placed.exchange_order_id)]


def test_a_lost_answer_of_a_filled_market_order_gives_its_fills(sim):
    exchange, _ = venue_on(sim)
    sim.lose_response()
    wanted = OrderRequest(uuid.uuid4().hex, "BTC/USDT", OrderSide.BUY, OrderType.MARKET,
                          Decimal("0.001"))
    filled = exchange.create_order(wanted)
    [booked] = sim.ledger().trades  # the exchange's own record of the fill
    assert filled.status is OrderStatus.FILLED
    [trade] = filled.trades
    assert (trade.trade_id, trade.price, trade.amount) == (
        str(booked.trade_id), booked.price, booked.qty)
    assert (trade.fee, trade.fee_currency) == (booked.commission, booked.commission_asset)
    assert sim.client_order_ids_seen() == {"tt" + wanted.client_order_id: 1}


def test_a_create_that_timed_out_unexecuted_is_sent_again_with_the_same_id(sim):
    exchange, sleeps = venue_on(sim, timeout_ms=500)
    sim.timeout(seconds=1.5, execute=False)
    wanted = limit_buy()
    placed = exchange.create_order(wanted)
    assert placed.status is OrderStatus.ACCEPTED
    ledger = sim.ledger()
    assert [(a.client_order_id, a.outcome) for a in ledger.attempts] == [
        ("tt" + wanted.client_order_id, "not_executed"),
        ("tt" + wanted.client_order_id, "accepted")]
    assert len(ledger.orders) == 1
    window, _backoff = sleeps  # waited out the first request's recvWindow before re-sending
    assert 9 < window <= 10


def test_rate_limited_reads_are_retried(sim):
    exchange, sleeps = venue_on(sim)
    sim.rate_limit(times=2, path="/api/v3/account", status=429)
    assert exchange.fetch_balance()["USDT"].free == Decimal("10000")
    assert len(sleeps) == 2


def test_an_order_below_the_exchanges_minimum_never_reaches_it(sim):
    exchange, _ = venue_on(sim)
    refused = exchange.create_order(limit_buy(price="100000", amount="0.00004"))  # 4 USDT < 5
    assert refused.status is OrderStatus.REJECTED
    assert refused.reason.startswith("ORDER_BELOW_MIN_NOTIONAL: ")
    assert sim.ledger().attempts == []


def test_a_sell_amount_is_truncated_to_the_step_never_above_the_holding(sim):
    exchange, _ = venue_on(sim)
    wanted = OrderRequest(uuid.uuid4().hex, "BTC/USDT", OrderSide.SELL, OrderType.MARKET,
                          Decimal("0.499999999"))
    sold = exchange.create_order(wanted)
    assert sold.status is OrderStatus.FILLED
    assert sum(t.amount for t in sold.trades) == Decimal("0.49999")  # step 0.00001
    assert exchange.fetch_balance()["BTC"].total == Decimal("0.00001")


def test_markets_are_loaded_once_per_exchange_and_shared_as_ccxt_shapes_them(sim):
    from adapters.exchanges.ccxt_client import load_markets, open_client

    first, _ = venue_on(sim)
    rules = first.market_rules("BTC/USDT")
    assert (rules.amount_step, rules.min_notional) == (Decimal("0.00001"), Decimal("5"))
    sim.go_down()  # a second account on the same exchange asks nothing
    second, _ = venue_on(sim)
    assert second.market_rules("BTC/USDT") == rules
    other = open_client("binance", sandbox=True, sandbox_host=sim.url)
    shared = load_markets(other, sandbox=True, sandbox_host=sim.url)["BTC/USDT"]
    assert type(shared["limits"]["cost"]["min"]) is float  # what other ccxt users expect


def test_a_create_executed_late_after_the_client_gave_up_is_found_after_the_window(sim):
    """The simulator holds the request 1.5 s and executes it after the client's 0.5 s
    timeout; the first lookup cannot see it yet. The venue waits out the request's
    validity window (recvWindow, 2 s here) before believing "unknown", and finds it."""
    import time

    waited: list[float] = []
    exchange = CcxtExchange.open("binance", sandbox=True, sandbox_host=sim.url,
                                 credentials=ApiCredentials(sim.api_key, sim.secret),
                                 timeout_ms=500,
                                 sleep=lambda s: (waited.append(s), time.sleep(s)))
    exchange.client.options["recvWindow"] = 2_000
    sim.timeout(seconds=1.5, execute=True, late=True)
    wanted = limit_buy()
    started = time.monotonic()
    placed = exchange.create_order(wanted)
    time.sleep(max(0.0, started + 2.5 - time.monotonic()))  # the held request is done too
    assert placed.status is OrderStatus.ACCEPTED
    assert placed.client_order_id == wanted.client_order_id
    assert sim.client_order_ids_seen() == {"tt" + wanted.client_order_id: 1}
    assert len(sim.ledger().orders) == 1 and len(waited) == 1

"""The exchange port's contract: what the engine and reconciliation may rely on from any
venue, run against every venue in conftest (the paper venue, ccxt on the simulator)."""

from __future__ import annotations

import uuid
from decimal import ROUND_DOWN, Decimal

import pytest

from domain.errors import DomainError
from domain.orders import OrderSide, OrderStatus, OrderType
from domain.ports import Balance, MarketRules, OrderRequest
from tests.contract.conftest import QUOTE_START, Venue

STEP = Decimal("0.00001")


def units_for(venue: Venue, quote: Decimal, price: Decimal) -> Decimal:
    """Base units worth ``quote`` at ``price``, on the venue's amount step."""
    rules = venue.exchange.market_rules(venue.pair)
    step = (rules.amount_step if rules and rules.amount_step else STEP)
    return (quote / price / step).to_integral_value(ROUND_DOWN) * step


def price_on_step(venue: Venue, price: Decimal) -> Decimal:
    rules = venue.exchange.market_rules(venue.pair)
    step = (rules.price_step if rules and rules.price_step else Decimal("0.01"))
    return (price / step).to_integral_value(ROUND_DOWN) * step


def request(venue: Venue, side: OrderSide, kind: OrderType, amount: Decimal,
            price: Decimal | None = None) -> OrderRequest:
    return OrderRequest(uuid.uuid4().hex, venue.pair, side, kind, amount, price)


def resting_buy(venue: Venue) -> OrderRequest:
    """A limit buy at half the market: it rests."""
    price = price_on_step(venue, venue.price() / 2)
    return request(venue, OrderSide.BUY, OrderType.LIMIT, units_for(venue, Decimal(50), price),
                   price)


def test_a_market_buy_fills_with_trades_that_move_the_balances(venue: Venue):
    before = venue.exchange.fetch_balance()
    amount = units_for(venue, Decimal(100), venue.price())
    placed = venue.exchange.create_order(
        request(venue, OrderSide.BUY, OrderType.MARKET, amount))
    filled = placed if placed.status is OrderStatus.FILLED else venue.exchange.fetch_order(
        placed.exchange_order_id, venue.pair)
    assert filled.status is OrderStatus.FILLED
    assert sum(t.amount for t in filled.trades) == amount
    assert all(type(v) is Decimal for t in filled.trades for v in (t.price, t.amount, t.fee))
    after = venue.exchange.fetch_balance()
    held = sum(t.base_held_change(OrderSide.BUY, venue.base) for t in filled.trades)
    assert after[venue.base].total - before[venue.base].total == held
    spent = sum(t.price * t.amount + (t.fee if t.fee_currency == venue.quote else 0)
                for t in filled.trades)
    assert before[venue.quote].total - after[venue.quote].total == spent


def test_fetching_an_order_again_gives_the_same_fills(venue: Venue):
    amount = units_for(venue, Decimal(100), venue.price())
    placed = venue.exchange.create_order(
        request(venue, OrderSide.BUY, OrderType.MARKET, amount))
    again = venue.exchange.fetch_order(placed.exchange_order_id, venue.pair)
    assert (again.client_order_id, again.status) == (placed.client_order_id, OrderStatus.FILLED)
    assert again.trades == placed.trades


def test_a_resting_order_is_open_found_by_client_id_and_cancelled(venue: Venue):
    wanted = resting_buy(venue)
    placed = venue.exchange.create_order(wanted)
    assert placed.status is OrderStatus.ACCEPTED
    assert placed.client_order_id == wanted.client_order_id
    open_ids = [o.exchange_order_id for o in venue.exchange.fetch_open_orders(venue.pair)]
    assert open_ids == [placed.exchange_order_id]
    assert [o.exchange_order_id for o in venue.exchange.fetch_open_orders()] == open_ids
    found = venue.exchange.fetch_order_by_client_id(wanted.client_order_id, venue.pair)
    assert found is not None and found.exchange_order_id == placed.exchange_order_id
    cancelled = venue.exchange.cancel_order(placed.exchange_order_id, venue.pair)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.trades == ()
    assert venue.exchange.fetch_open_orders(venue.pair) == []
    assert venue.exchange.fetch_balance()[venue.quote].free == QUOTE_START


def test_a_resting_order_locks_its_funds(venue: Venue):
    wanted = resting_buy(venue)
    venue.exchange.create_order(wanted)
    quote = venue.exchange.fetch_balance()[venue.quote]
    assert quote.locked >= wanted.amount * wanted.price
    assert quote.total == QUOTE_START


def test_the_same_client_id_twice_places_one_order(venue: Venue):
    wanted = resting_buy(venue)
    first = venue.exchange.create_order(wanted)
    second = venue.exchange.create_order(wanted)
    assert second.exchange_order_id == first.exchange_order_id
    assert len(venue.exchange.fetch_open_orders(venue.pair)) == 1


def test_an_unknown_client_id_is_none(venue: Venue):
    assert venue.exchange.fetch_order_by_client_id(uuid.uuid4().hex, venue.pair) is None


def test_an_unknown_order_is_order_not_found(venue: Venue):
    with pytest.raises(DomainError) as missing:
        venue.exchange.fetch_order("424242424242", venue.pair)
    assert missing.value.code == "ORDER_NOT_FOUND"


def test_a_buy_beyond_the_funds_is_rejected_with_a_reason(venue: Venue):
    price = price_on_step(venue, venue.price() / 2)
    too_much = units_for(venue, QUOTE_START * 3, price)
    refused = venue.exchange.create_order(
        request(venue, OrderSide.BUY, OrderType.LIMIT, too_much, price))
    assert refused.status is OrderStatus.REJECTED
    assert refused.reason and "insufficient" in refused.reason.lower()
    assert venue.exchange.fetch_open_orders(venue.pair) == []
    assert venue.exchange.fetch_balance()[venue.quote] == Balance(QUOTE_START)


def test_market_rules_are_decimals_or_none(venue: Venue):
    rules = venue.exchange.market_rules(venue.pair)
    assert rules is None or (isinstance(rules, MarketRules) and all(
        value is None or (type(value) is Decimal and value > 0) for value in rules))


def test_a_marketable_limit_buy_fills_at_or_below_its_price(venue: Venue):
    price = price_on_step(venue, venue.price() * Decimal("1.01"))
    amount = units_for(venue, Decimal(100), price)
    placed = venue.exchange.create_order(
        request(venue, OrderSide.BUY, OrderType.LIMIT, amount, price))
    venue.settle()
    filled = venue.exchange.fetch_order(placed.exchange_order_id, venue.pair)
    assert filled.status is OrderStatus.FILLED
    assert sum(t.amount for t in filled.trades) == amount
    assert all(t.price <= price for t in filled.trades)
    assert venue.exchange.fetch_open_orders(venue.pair) == []

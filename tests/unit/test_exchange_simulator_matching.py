"""The exchange simulator's matching (tests/exchange_simulator/matching.py), without HTTP:
whatever orders and clock moves, money is conserved, nothing is negative, and every fill is a
price the candle traded at and the order accepted."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.marketdata.csv_candles import candles_from_rows
from tests.exchange_simulator.market import KNOWN_FILTERS, Market, SimulatedClock
from tests.exchange_simulator.matching import Matching
from tests.exchange_simulator.records import BinanceError

MINUTE = 60_000
T0 = 1_700_000_000_000


@st.composite
def candle_rows(draw):
    rows, price = [], Decimal(draw(st.integers(90_000, 110_000)))
    for i in range(draw(st.integers(3, 30))):
        moves = [Decimal(draw(st.integers(-2000, 2000))) / 100 for _ in range(3)]
        o = price + moves[0]
        c = o + moves[1]
        h = max(o, c) + abs(moves[2])
        low = min(o, c) - abs(moves[2]) / 2
        rows.append((T0 + i * MINUTE, o, h, low, c, Decimal(1)))
        price = c
    return rows


limit_orders = st.tuples(st.just("limit"), st.sampled_from(["BUY", "SELL"]),
                         st.integers(1, 300), st.integers(-3000, 3000))
actions = st.lists(st.one_of(
    limit_orders, limit_orders,
    st.tuples(st.just("market"), st.sampled_from(["BUY", "SELL"]), st.integers(1, 300)),
    st.tuples(st.just("advance"), st.integers(0, 5 * MINUTE)),
    st.tuples(st.just("advance"), st.integers(0, 5 * MINUTE)),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
), min_size=5, max_size=40)


@settings(max_examples=60, deadline=None)
@given(rows=candle_rows(), steps=actions, fee_mode=st.sampled_from(["binance", "quote"]))
def test_money_is_conserved_and_fills_are_prices_the_candles_traded(rows, steps, fee_mode):
    candles = candles_from_rows(rows)
    market = Market("BTC", "USDT", candles, KNOWN_FILTERS["BTCUSDT"])
    initial = {"USDT": Decimal("10000"), "BTC": Decimal("0.1")}
    matching = Matching({"BTCUSDT": market}, SimulatedClock(T0), initial, Decimal("0.001"),
                        fee_mode)
    for step in steps:
        run(matching, market, step)
    matching.catch_up()
    check_books(matching, initial)
    for trade in matching.trades:
        order = matching.orders[trade.order_id]
        if order.type == "LIMIT":
            assert trade.price <= order.price if trade.side == "BUY" else (
                trade.price >= order.price)
        if trade.is_maker:  # a resting order filled by a candle
            check_resting_fill(market, order, trade)


def check_resting_fill(market: Market, order, trade) -> None:
    """Filled by the first candle opening at or after its placement that traded through its
    price: at that price, or at the candle's open when it opened beyond it."""
    candles = market.candles
    i = market.opened_by(trade.time_ms) - 1
    assert trade.time_ms == market.close_time(i) and candles.timestamps[i] >= order.time_ms
    opened, high, low, _ = candles.exact(i)
    buying = order.side == "BUY"
    assert trade.price == (min(opened, order.price) if buying else max(opened, order.price))
    assert low <= trade.price <= high
    for j in range(market.opened_by(order.time_ms - 1), i):
        _, earlier_high, earlier_low, _ = candles.exact(j)
        assert (earlier_low > order.price) if buying else (earlier_high < order.price)


def run(matching: Matching, market: Market, step: tuple) -> None:
    now = matching.now_ms()
    try:
        if step[0] == "limit":
            _, side, lots, offset = step
            price = market.price_at(now) + Decimal(offset) / 100  # within a candle or two
            matching.create_order({"symbol": "BTCUSDT", "side": side, "type": "LIMIT",
                                   "quantity": str(Decimal(lots) / 10000),
                                   "price": str(price)})
        elif step[0] == "market":
            matching.create_order({"symbol": "BTCUSDT", "side": step[1], "type": "MARKET",
                                   "quantity": str(Decimal(step[2]) / 10000)})
        elif step[0] == "advance":
            matching.clock.advance(step[1])
        else:
            matching.cancel_order({"symbol": "BTCUSDT", "orderId": str(1001 + step[1])})
    except BinanceError as error:
        assert error.code in (-2010, -2011, -1013)


def check_books(matching: Matching, initial: dict[str, Decimal]) -> None:
    expected = dict(initial)
    for t in matching.trades:
        base_sign = 1 if t.side == "BUY" else -1
        expected["BTC"] += base_sign * t.qty
        expected["USDT"] -= base_sign * t.quote_qty
        expected[t.commission_asset] -= t.commission
    locked = {"BTC": Decimal(0), "USDT": Decimal(0)}
    for order in matching.orders.values():
        if order.status == "NEW":
            locked[order.locked_asset] += order.locked
    for asset, (free, held) in matching.balances().items():
        assert free >= 0 and held >= 0
        assert held == locked[asset]
        assert free + held == expected[asset]

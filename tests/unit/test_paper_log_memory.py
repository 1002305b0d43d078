"""The paper runner's order index forgets an order once it is final and its deal finished,
and only then: whatever the order of placements, fills, cancels and deals finishing, it
lists every order of an open deal, sums every fill, and holds no more than what is open or
belongs to an open deal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from application.paper_log import PaperLog
from domain.bots import Bot
from domain.orders import Order, OrderSide, OrderType
from domain.recording import Cause

CAUSE = Cause(datetime(2026, 1, 1, tzinfo=UTC), "engine", "test")
DEALS = [UUID(int=1000 + n) for n in range(3)]

# (what, which deal or order, how much of it): "fill" takes a part of what is left
ACTIONS = st.lists(st.tuples(st.sampled_from(["place", "fill", "fill_all", "cancel", "finish"]),
                             st.integers(0, 9), st.sampled_from(["0.3", "0.5", "1"])),
                   max_size=60)


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
def test_the_index_holds_open_orders_and_open_deals_orders_only(actions):
    index = PaperLog(None)
    orders: list[Order] = []
    finished: set[UUID] = set()
    quote = base = Decimal(0)  # the fills as a keeper of everything sums them
    trades = 0
    for what, n, part in actions:
        events: list = []
        if what == "place":
            deal = None if n >= len(DEALS) else DEALS[n]
            if deal in finished:
                continue  # a finished deal places nothing
            order = Order.submit(UUID(int=len(orders) + 1), CAUSE, client_order_id=f"c{n}",
                                 owner_id="u", exchange_account_id="a", pair="BTC/USDT",
                                 side=OrderSide.BUY if n % 2 else OrderSide.SELL,
                                 type=OrderType.LIMIT, amount=Decimal("2"),
                                 price=Decimal("10"), deal_id=deal)
            orders.append(order)
        elif what == "finish":
            deal = DEALS[n % len(DEALS)]
            if deal in finished:
                continue
            finished.add(deal)
            events.append(Bot.DealFinished(
                originator_id=UUID(int=7), originator_version=2, timestamp=CAUSE.at,
                actor="engine", correlation_id="test", deal_id=deal))
        elif orders and (order := orders[n % len(orders)]).is_open:
            if what == "cancel":
                order.cancel(CAUSE, "cancelled")
            else:
                amount = order.remaining if what == "fill_all" else (
                    order.remaining * Decimal(part))
                trades += 1
                order.fill(CAUSE, trade_id=f"t{trades}", price=Decimal("10"), amount=amount,
                           fee=Decimal("0.01"), fee_currency="USDT")
                sign = 1 if order.side is OrderSide.BUY else -1
                quote, base = quote - sign * 10 * amount - Decimal("0.01"), base + sign * amount
        for order in orders:
            events.extend(order.collect_events())
        index.observe(events)

    for deal in DEALS:
        placed = [o.id for o in orders if o.deal_id == deal]
        assert index.orders_of(deal) == ([] if deal in finished else placed)
        if deal not in finished:
            assert index.open_orders_of(deal) == [o.id for o in orders
                                                  if o.deal_id == deal and o.is_open]
    assert index.fills("a", "BTC/USDT") == (quote, base)
    held = [o for o in orders if o.is_open or (o.deal_id is not None
                                               and o.deal_id not in finished)]
    assert index.remembered() == len(held)

"""Our aggregates build their events without the library's generic keyword plumbing (it
was a large part of a backtest's time): what they build must be exactly what the library's
``_create`` and ``trigger_event`` build, event and aggregate alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.bots import Bot, BotMode
from domain.dca import DcaConfig
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from domain.recording import Cause

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CAUSE = Cause(AT, "alice", "req-1")
LATER = Cause(AT + timedelta(minutes=1), "engine", "step-2")
CONFIG = DcaConfig.from_mapping({
    "pair": "BTC/USDT", "base_order_quote": "10", "safety_order_quote": "5",
    "max_safety_orders": 1, "price_deviation_pct": "1", "safety_volume_scale": "1",
    "safety_step_scale": "1", "take_profit_pct": "1"})
BOT_ID, ORDER_ID = UUID(int=1), UUID(int=2)
ORDER = dict(client_order_id="c1", bot_id=BOT_ID, deal_id=None, owner_id="alice",
             exchange_account_id="acc", pair="BTC/USDT", side=OrderSide.BUY,
             type=OrderType.LIMIT, purpose=OrderPurpose.SAFETY, safety_order=1,
             price=Decimal("100.50"), amount=Decimal("0.25"))


def library_create(cls, event_class, id, cause, **data):
    return cls._create(event_class, id=id, timestamp=cause.at, actor=cause.actor,
                       correlation_id=cause.correlation_id, **data)


def state(obj) -> dict:
    return {k: v for k, v in vars(obj).items() if k != "_pending_events"}


@pytest.mark.parametrize(("cls", "event_class", "id", "data"), [
    (Bot, Bot.Created, BOT_ID, dict(name="b", owner_id="alice", exchange_account_id="acc",
                                    mode=BotMode.PAPER, config=CONFIG)),
    (Order, Order.Submitted, ORDER_ID, ORDER),
])
def test_a_new_aggregate_and_its_event_are_what_the_library_makes(cls, event_class, id, data):
    ours = cls._start(event_class, id, CAUSE, **data)
    theirs = library_create(cls, event_class, id, CAUSE, **data)

    assert state(ours) == state(theirs)
    (a,), (b,) = ours.collect_events(), theirs.collect_events()
    assert type(a) is type(b) and list(vars(a)) == list(vars(b)) and vars(a) == vars(b)


def test_a_further_event_is_what_trigger_event_makes():
    ours = Order._start(Order.Submitted, ORDER_ID, CAUSE, **ORDER)
    theirs = Order._start(Order.Submitted, ORDER_ID, CAUSE, **ORDER)
    ours.collect_events(), theirs.collect_events()

    ours._record(Order.Accepted, LATER, exchange_order_id="x-1")
    theirs.trigger_event(Order.Accepted, timestamp=LATER.at, actor=LATER.actor,
                         correlation_id=LATER.correlation_id, exchange_order_id="x-1")

    assert state(ours) == state(theirs)
    (a,), (b,) = ours.collect_events(), theirs.collect_events()
    assert list(vars(a)) == list(vars(b)) and vars(a) == vars(b)


def test_a_missing_or_unexpected_field_is_refused():
    with pytest.raises(TypeError, match="exchange_order_id missing"):
        Order._start(Order.Submitted, ORDER_ID, CAUSE, **ORDER)._record(Order.Accepted, LATER)
    with pytest.raises(TypeError, match="unexpected colour"):
        Order._start(Order.Submitted, ORDER_ID, CAUSE, **ORDER, colour="red")


@pytest.mark.parametrize("order_of_fields", ["declared", "reversed"])
def test_the_fields_named_in_any_order_make_the_library_s_event(order_of_fields):
    """The fields named in their declared order take a shorter path than in another order:
    both make what the library's ``_create`` and ``trigger_event`` make, key order included
    (it is the stored JSON's order)."""
    order = dict(ORDER) if order_of_fields == "declared" else dict(reversed(ORDER.items()))
    fill = dict(trade_id="t-1", price=Decimal("100.50"), amount=Decimal("0.25"),
                fee=Decimal("0.01"), fee_currency="USDT")
    if order_of_fields == "reversed":
        fill = dict(reversed(fill.items()))
    ours = Order._start(Order.Submitted, ORDER_ID, CAUSE, **order)
    theirs = library_create(Order, Order.Submitted, ORDER_ID, CAUSE, **ORDER)
    ours._record(Order.Accepted, LATER, exchange_order_id="x-1")
    ours._record(Order.Filled, LATER, **fill)
    for event_class, data in ((Order.Accepted, {"exchange_order_id": "x-1"}),
                              (Order.Filled, fill)):
        theirs.trigger_event(event_class, timestamp=LATER.at, actor=LATER.actor,
                             correlation_id=LATER.correlation_id, **data)

    assert state(ours) == state(theirs)
    for a, b in zip(ours.collect_events(), theirs.collect_events(), strict=True):
        assert type(a) is type(b) and list(vars(a)) == list(vars(b)) and vars(a) == vars(b)

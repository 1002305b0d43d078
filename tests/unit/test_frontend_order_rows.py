"""The order list writes a new order's row without checking its text again only when every
fact that gave it a text was plain ASCII: text a view cannot store (NUL, ␀), from any of
the order's events, is still written escaped and reads back as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from application.bootstrap import open_trading
from domain.orders import Order, OrderPurpose, OrderSide, OrderType
from projections.facts import FactDecoder
from projections.frontend import FE_ORDERS, FrontEnd
from projections.tables import Changes

ODD = "a\x00b \u2400 é"
ORDER, BOT, DEAL = UUID(int=1), UUID(int=2), UUID(int=3)
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _events(client: str, exchange: str, reason: str) -> list:
    common = {"originator_id": ORDER, "actor": "bot", "correlation_id": "c1"}
    return [
        Order.Submitted(**common, originator_version=1, timestamp=T0,
                        originator_topic="domain.orders:Order", bot_id=BOT, deal_id=DEAL,
                        owner_id="alice", exchange_account_id="acc", pair="BTC/USDT",
                        client_order_id=client, side=OrderSide.BUY, type=OrderType.LIMIT,
                        purpose=OrderPurpose.BASE, safety_order=0, price=Decimal("100.5"),
                        amount=Decimal("0.25")),
        Order.Accepted(**common, originator_version=2, timestamp=T0 + timedelta(seconds=1),
                       exchange_order_id=exchange),
        Order.Cancelled(**common, originator_version=3, timestamp=T0 + timedelta(seconds=2),
                        reason=reason),
    ]


def _written_row(texts: tuple[str, str, str]) -> tuple:
    """The fe_orders row one batch writes for an order submitted, accepted and cancelled."""
    app = open_trading("memory")
    try:
        decode = FactDecoder(app.mapper)
        projection, out = FrontEnd(), Changes(FrontEnd.tables)
        for position, event in enumerate(_events(*texts), start=1):
            stored = app.mapper.to_stored_event(event)
            fact = decode((position, str(stored.originator_id), stored.originator_version,
                           stored.topic, stored.state, None))
            projection.route(fact.kind)(fact, out)
        projection.end_batch(out)
    finally:
        app.close()
    (orders,) = [f for f in out.freeze() if f.table is FE_ORDERS]
    (row,) = orders.inserts
    return row


@pytest.mark.parametrize("odd_at", [0, 1, 2], ids=["client_order_id", "exchange_order_id",
                                                   "reason"])
def test_a_new_orders_odd_text_from_any_of_its_events_is_written_escaped(odd_at):
    texts = ["c-1", "x-1", "user asked"]
    texts[odd_at] = ODD
    row = _written_row(tuple(texts))
    written = dict(zip(FE_ORDERS.column_names, row, strict=True))
    column = ("client_order_id", "exchange_order_id", "reason")[odd_at]
    assert written[column] == "a\u24000000b \u24002400 é"  # as the README documents
    assert FE_ORDERS.from_db(row)[column] == ODD  # and read back as it was


def test_a_new_orders_plain_text_is_written_as_it_is():
    row = dict(zip(FE_ORDERS.column_names, _written_row(("c-1", "x-1", "user asked")),
                   strict=True))
    assert (row["client_order_id"], row["exchange_order_id"], row["reason"]) == (
        "c-1", "x-1", "user asked")
    assert (row["bot_id"], row["deal_id"]) == (str(BOT), str(DEAL))
    assert (row["status"], row["price"], row["amount"]) == ("cancelled", "100.5", "0.25")

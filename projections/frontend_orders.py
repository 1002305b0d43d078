"""The order list of the ``frontend`` projection (``fe_orders``): its part of ``FrontEnd``.

Every order of the log passes through here, most of them submitted, accepted and filled
within one batch, so a live order's row is a list in ``fe_orders``' column order (see
``frontend_tables.O_...``), not a dict, and an order new to the batch is written once, at
its end, as database values: no dict made and none turned into a tuple again. Its texts
are checked for what a view cannot store only when a fact that gave one was not plain
ASCII (``Fact.ascii_text``: nearly every fact is).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.money import ZERO
from projections.facts import Fact
from projections.framework import on
from projections.frontend_tables import (
    FE_ORDERS,
    FINAL_ORDER,
    O_AMOUNT,
    O_AVERAGE,
    O_COST,
    O_EXCHANGE,
    O_FEES,
    O_FILLED,
    O_REASON,
    O_STATUS,
    O_UPDATED,
    OPEN_ORDERS,
    order_values,
)
from projections.reader import uuid_text
from projections.store import ViewStore
from projections.tables import Changes

ORDER_STATUS = {"Order.CancelRequested": "cancel_requested", "Order.Cancelled": "cancelled",
                "Order.Rejected": "rejected", "Order.Expired": "expired",
                "Order.Lost": "lost"}


class OrderRows:
    """The handlers of order events and the order rows they keep (mixed into ``FrontEnd``:
    its ``@on`` handlers are the projection's)."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Any]] = {}  # live orders' rows
        self.dirty_orders: dict[str, list[Any]] = {}  # written once per batch
        self.new_orders: set[str] = set()  # submitted in this batch: inserted as they are
        # New orders holding a text not known storable (a fact whose stored JSON is not
        # plain ASCII gave it): checked when written; the others are written as they are.
        self.unchecked: set[str] = set()
        # Canonical id text by stored hex, for this batch (a bot's orders share one, a
        # deal's orders come close together).
        self.ids: dict[str, str] = {}

    def load_orders(self, store: ViewStore, suffix: str) -> None:
        names = FE_ORDERS.column_names
        self.orders = {r["order_id"]: [r[c] for c in names] for r in
                       store.select(FE_ORDERS, OPEN_ORDERS, suffix=suffix)}

    def write_orders(self, out: Changes) -> None:
        """The batch's order rows as database values (each order's once): new ones
        appended, the others upserted."""
        new, unchecked = self.new_orders, self.unchecked
        ready, replaced = [], []
        for order_id, order in self.dirty_orders.items():
            values = order_values(order)
            if order_id not in new:
                replaced.append(FE_ORDERS.storable(values))
            elif order_id in unchecked:
                out.append(FE_ORDERS, values)  # (its texts checked when frozen)
            else:
                ready.append(values)
        out.insert_values(FE_ORDERS, ready)
        out.upsert_values(FE_ORDERS, replaced)
        self.dirty_orders.clear()
        new.clear()
        unchecked.clear()
        self.ids.clear()

    def _order_lost(self, fact: Fact, order: list[Any], out: Changes) -> None:
        """What ``FrontEnd`` records of an order the exchange lost (its drift list)."""
        raise NotImplementedError

    @on("Order.Submitted")
    def _order_submitted(self, fact: Fact, out: Changes) -> None:
        # Its plain fields read from the state at once (what ``fact.text``, ``id_text`` and
        # ``value`` give, without a call per column).
        state, at, ids = fact.state, fact.iso_time, self.ids
        bot_id, deal_id = state["bot_id"], state["deal_id"]
        if bot_id is not None:
            bot_id = bot_id["_data_"]
            bot_id = ids.get(bot_id) or ids.setdefault(bot_id, uuid_text(bot_id))
        if deal_id is not None:
            deal_id = deal_id["_data_"]
            deal_id = ids.get(deal_id) or ids.setdefault(deal_id, uuid_text(deal_id))
        side, kind, purpose = state["side"], state["type"], state["purpose"]
        order = [fact.oid, state["client_order_id"], None, bot_id, deal_id,
                 state["owner_id"], state["pair"],
                 side["_data_"] if side.__class__ is dict else side,
                 kind["_data_"] if kind.__class__ is dict else kind,
                 purpose["_data_"] if purpose.__class__ is dict else purpose,
                 state["safety_order"], fact.dec("price"), fact.dec("amount"), ZERO, ZERO,
                 None, ZERO, "submitted", None, at, at]
        self.orders[fact.oid] = self.dirty_orders[fact.oid] = order
        self.new_orders.add(fact.oid)
        if not fact.ascii_text:
            self.unchecked.add(fact.oid)

    # One handler per group of kinds (no test of the kind per event for the busiest).

    @on("Order.Accepted", "Order.ObservedOpen")
    def _order_accepted(self, fact: Fact, out: Changes) -> None:
        order = self.orders[fact.oid]
        order[O_STATUS] = "accepted"
        order[O_EXCHANGE] = fact.state["exchange_order_id"]
        order[O_UPDATED] = fact.iso_time
        self.dirty_orders[fact.oid] = order
        if not fact.ascii_text:
            self.unchecked.add(fact.oid)

    @on("Order.Filled")
    def _order_filled(self, fact: Fact, out: Changes) -> None:
        self._order_traded(fact, fact.dec("fee"))

    @on("Order.TradeObserved")
    def _order_trade_observed(self, fact: Fact, out: Changes) -> None:
        # a live trade's fee may be in another asset: its value in quote counts here
        self._order_traded(fact, fact.dec("fee_quote"))

    def _order_traded(self, fact: Fact, fee: Decimal | None) -> None:
        order = self.orders[fact.oid]
        amount = fact.dec("amount")
        order[O_FILLED] += amount
        order[O_COST] += fact.dec("price") * amount
        order[O_FEES] += fee
        order[O_AVERAGE] = order[O_COST] / order[O_FILLED]
        order[O_STATUS] = ("filled" if order[O_FILLED] == order[O_AMOUNT]
                           else "partially_filled")
        self._order_written(fact, order)

    @on(*ORDER_STATUS)
    def _order_status(self, fact: Fact, out: Changes) -> None:
        order = self.orders[fact.oid]
        if fact.kind == "Order.Lost":
            self._order_lost(fact, order, out)
        order[O_STATUS] = ORDER_STATUS[fact.kind]
        if "reason" in fact.state:
            order[O_REASON] = fact.state["reason"]
            if not fact.ascii_text:
                self.unchecked.add(fact.oid)
        self._order_written(fact, order)

    def _order_written(self, fact: Fact, order: list[Any]) -> None:
        order[O_UPDATED] = fact.iso_time
        self.dirty_orders[fact.oid] = order
        if order[O_STATUS] in FINAL_ORDER:
            del self.orders[fact.oid]

"""The tables of the ``frontend`` projection (``projections/frontend.py``): bot list and detail,
deal list, order list, drift and users' positions, with the indexes their queries use (a
user's bots by status, a bot's deals and orders by time, a deal's orders)."""

from __future__ import annotations

from typing import Any

from projections.facts import Fact
from projections.list_rows import column_at, list_writer
from projections.tables import OPEN_DEALS, UPDATED_IN_PLACE, Row, table

FINAL_ORDER = frozenset({"filled", "cancelled", "rejected", "expired", "lost"})
# The orders a start reads back (``FE_ORDERS.open_rows``: its load says it so, literally)
_FINALS = ", ".join(f"'{status}'" for status in sorted(FINAL_ORDER))
OPEN_ORDERS = f"status NOT IN ({_FINALS})"

FE_BOTS = table(
    "fe_bots", key=("bot_id",), indexes=(("owner_id", "status"),),
    fillfactor=UPDATED_IN_PLACE,
    bot_id="text", owner_id="text", name="text", status="text", mode="text", stage="text",
    pair="text", config_version="int", exchange_account_id="text", open_deal_id="text",
    deals_opened="int", deals_closed="int", deals_cancelled="int", error_reason="text",
    warning="text",
    status_before_error="text", leaderboard_opt_in="int",
    created_at="text", updated_at="text", archived="int",
)
FE_DEALS = table(
    "fe_deals", key=("deal_id",), indexes=(("bot_id", "opened_at"), ("owner_id", "status")),
    open_rows=OPEN_DEALS,
    deal_id="text", bot_id="text", owner_id="text", pair="text", status="text",
    opened_at="text", closed_at="text", close_reason="text", units="money",
    units_bought="money", cost="money", average_entry="money", take_profit_price="money",
    stop_loss_price="money", safety_orders_used="int", realized_pnl="money",
    updated_at="text",
)
FE_ORDERS = table(
    "fe_orders", key=("order_id",),
    indexes=(("deal_id",), ("bot_id", "created_at"), ("owner_id", "status")),
    open_rows=OPEN_ORDERS,
    order_id="text", client_order_id="text", exchange_order_id="text", bot_id="text",
    deal_id="text", owner_id="text", pair="text", side="text", type="text", purpose="text",
    safety_order="int", price="money", amount="money", filled="money", cost="money",
    average_price="money", fees="money", status="text", reason="text", created_at="text",
    updated_at="text",
)
# What live exchanges said that differs from what we asked or hold: a stream, one row per
# event (drift found and resolved, stray orders cancelled, orders the exchange did not know).
FE_DRIFT = table(
    "fe_drift", key=("position",), indexes=(("account_id", "position"),
                                            ("owner_id", "position")),
    position="int", account_id="text", owner_id="text", kind="text", asset="text",
    expected="money", observed="money", client_order_id="text", order_id="text",
    pair="text", reason="text", at="text",
)
# Users' own positions and their exits (application/positions.py): whose each is, so a
# user's audit log lists their events (the positions themselves are read from the log).
FE_POSITIONS = table(
    "fe_positions", key=("aggregate_id",), indexes=(("owner_id",),),
    aggregate_id="text", owner_id="text", kind="text",
)
# An order's row while it lives is a list in FE_ORDERS' column order, not a dict: every order
# of the log makes one, and a list costs a fraction of a 21-key dict (made, then written).
O_CLIENT, O_EXCHANGE, O_OWNER, O_PAIR, O_AMOUNT, O_FILLED, O_COST, O_AVERAGE, O_FEES, \
    O_STATUS, O_REASON, O_UPDATED = column_at(
        FE_ORDERS, "client_order_id", "exchange_order_id", "owner_id", "pair", "amount",
        "filled", "cost", "average_price", "fees", "status", "reason", "updated_at")
order_values = list_writer(FE_ORDERS)


def drift_row(fact: Fact, kind: str, **values: Any) -> Row:
    """A row of ``fe_drift``: the columns given, the others empty."""
    row = {column: None for column in FE_DRIFT.column_names}
    row.update(values, position=fact.position, kind=kind, at=fact.iso_time)
    return row

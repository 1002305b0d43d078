"""What a user's own positions commit against their risk limits: what can still fill, not
only what has.

A position commits the cost (fees excluded) of the units it still holds, plus each buy of
it that can still fill: an open limit buy at its limit price x the amount left; an open
market buy at the price it was judged at (a trailing stop's at its level, an entry's as
its ``Position.OrderPlaced`` records it on a live venue: every process reads it, after a
restart too; a paper venue fills it at once); an active buy trailing
stop (a trailing entry, or one added to the position) at the highest price it can fire at:
its level, which only moves down, or before it activates, the level its activation price
gives. A buy that fills moves from the second figure into the first; one cancelled leaves
both.

WHY: a position counted its held units only, so a resting limit or trailing entry counted
nothing until it filled, and a deal's buys judged meanwhile could take the same room: both
filled, past ``maxExposureQuote``. A live market entry's judged price was kept in the memory
of the process that sent it: another process (an engine worker judging a deal), or the same
after a restart, counted nothing of it until it filled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from uuid import UUID

from application.exposure_orders import open_orders
from application.trading import Trading
from domain.money import ZERO
from domain.orders import Order, OrderSide
from domain.positions import ExitKind, ExitStatus, Position, PositionExit
from domain.trailing import activated, trail_level


def fire_bound(side: OrderSide, price: Decimal, pct: Decimal | None,
               distance: Decimal | None, activation: Decimal | None) -> Decimal:
    """The highest level a buy trailing stop attached at ``price`` can fire at: trailing
    from ``price`` at once, else from its activation price at most."""
    start = price if activated(side, activation, price) else activation
    return trail_level(side, start, pct, distance)


def committed_by(trading: Trading, positions: Iterable[Position],
                 buy_exits: Mapping[UUID, list[UUID]]) -> Decimal:
    """What ``positions`` (the open ones of them) commit. ``buy_exits``: each one's buy
    trailing stops (``PositionIndex.buy_exits``). Only what can be open is read: those
    stops, and the orders that may rest (limit entries, market entries with a judged
    price, the buy stops' orders), in two queries at most (``Trading.load_many``); an
    order once found final is not read again (``application/exposure_orders.py``)."""
    open_ = [p for p in positions if p.is_open]
    exits = trading.load_many([e for p in open_ for e in buy_exits.get(p.id, ())],
                              PositionExit)
    buys = [order_id for p in open_ for order_id, exit_id, leg in p.orders
            if _may_rest(p, leg, exits.get(exit_id) if exit_id else None)]
    orders = open_orders(trading, buys)  # (one found final is not read again)
    return sum((position_commits(p, [exits[e] for e in buy_exits.get(p.id, ()) if e in exits],
                                 orders) for p in open_), ZERO)


def position_commits(position: Position, exits: Iterable[PositionExit],
                     orders: Mapping[UUID, Order]) -> Decimal:
    """What one open position commits (see the module's docstring)."""
    held = ZERO
    if position.units_bought > ZERO:
        held = position.cost * position.units / position.units_bought
    by_id = {group.id: group for group in exits}
    resting = ZERO
    for order_id, exit_id, leg in position.orders:
        order = orders.get(order_id)
        if order is not None and order.is_open and order.side is OrderSide.BUY:
            resting += order.remaining * _price_of(position, order, by_id.get(exit_id), leg)
    waiting = sum((g.amount * _waiting_level(g) for g in by_id.values()
                   if g.side is OrderSide.BUY and g.status is ExitStatus.ACTIVE), ZERO)
    return held + resting + waiting


def _may_rest(position: Position, leg: str, group: PositionExit | None) -> bool:
    """An order of ``position`` that buys and may still be open: a limit entry, a market
    entry with a judged price (a live one; on paper it filled at once), a buy trailing
    stop's. WHY: reading every entry order made a check of 10 open positions read 10 more
    aggregates."""
    if leg == "entry":
        return position.entry == "limit" or position.entry_judged is not None
    return group is not None and group.side is OrderSide.BUY


def _price_of(position: Position, order: Order, group: PositionExit | None,
              leg: str) -> Decimal:
    """A limit buy's limit; a market buy's judged price: a trailing stop's level (the
    price at which it fired), an entry's as its ``OrderPlaced`` records it."""
    if order.price is not None:
        return order.price
    if group is not None and group.level is not None:
        return group.level
    return (position.entry_judged or ZERO) if leg == "entry" else ZERO


def _waiting_level(group: PositionExit) -> Decimal:
    """The level an active buy trailing stop fires at, at most."""
    if group.kind is not ExitKind.TRAILING_STOP:
        return ZERO
    if group.level is not None:
        return group.level
    if group.activation_price is None:
        return ZERO
    return trail_level(group.side, group.activation_price, group.trail_percent,
                       group.trail_amount)

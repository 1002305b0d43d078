"""PositionDesk: every open position of one market (an account on one pair) and its exits,
driven by the same venue walk as the bots' engines (a ``PriceWatcher``).

The venue walks each candle's path (open → low → high → close when it closed up, else
open → high → low → close) and stops at every level this desk holds: an OCO's stop, a
trailing stop's level, an activation price, and every rising (falling) leg's end while a
sell (buy) trailing stop follows the highest (lowest). An OCO's take profit rests on the
venue as a limit sell; its stop is held here (emulated, the same on paper and live): when
one leg fills, the other is cancelled in the same step.

Orders go through the venue like the engine's: on a live account the runner's
write-ahead stores each decision before its request leaves, and client ids are order ids.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from uuid import UUID

from domain.money import ZERO
from domain.orders import Order, OrderPurpose, OrderSide, OrderStatus, OrderType
from domain.ports import Exchange, ExchangeOrder, IdSource, OrderRequest
from domain.positions import ExitKind, ExitStatus, Position, PositionExit, PositionStatus
from domain.recording import Cause, TradetapeAggregate
from domain.trailing import triggered

log = logging.getLogger("tradetape.positions")
PURPOSE = {"entry": OrderPurpose.BASE, "take_profit": OrderPurpose.TAKE_PROFIT,
           "stop": OrderPurpose.STOP_LOSS, "trailing": OrderPurpose.STOP_LOSS,
           "close": OrderPurpose.MANUAL, "emergency_exit": OrderPurpose.MANUAL}


class PositionDesk:
    def __init__(self, venue: Exchange, ids: IdSource):
        self.venue, self.ids = venue, ids
        self.positions: dict[UUID, Position] = {}  # open (or pending) ones
        self.exits: dict[UUID, PositionExit] = {}  # active ones, in the order attached
        self.orders: dict[str, Order] = {}  # open orders, by client id
        self.roles: dict[str, tuple[UUID, UUID | None, str]] = {}  # client id -> role
        self._cause: Cause | None = None
        self._dirty: dict[int, TradetapeAggregate] = {}
        self._sized = getattr(venue, "sized", None)  # live: the exchange's precision

    # --- steps ----------------------------------------------------------------------------

    def begin_step(self, cause: Cause) -> None:
        self._cause = cause

    def take_changes(self) -> list[TradetapeAggregate]:
        changed, self._dirty = list(self._dirty.values()), {}
        return changed

    def touch(self, aggregate: TradetapeAggregate) -> None:
        self._dirty[id(aggregate)] = aggregate

    @property
    def busy(self) -> bool:
        return bool(self.positions)

    # --- PriceWatcher ---------------------------------------------------------------------

    def trigger_levels(self) -> tuple[Decimal | None, Decimal | None]:
        belows, aboves = [], []
        for group in self._watching():
            sell = group.side is OrderSide.SELL
            if group.kind is ExitKind.OCO:
                belows.append(group.stop_price)
            elif group.level is not None:
                (belows if sell else aboves).append(group.level)
            elif group.activation_price is not None:
                (aboves if sell else belows).append(group.activation_price)
        return max(belows, default=None), min(aboves, default=None)

    def high_watch(self) -> Decimal | None:
        """The lowest highest a sell trailing stop follows: the walk shows this desk every
        rising leg's end, so each new high moves the level."""
        return min((g.extreme for g in self._trailing(OrderSide.SELL)), default=None)

    def low_watch(self) -> Decimal | None:
        return max((g.extreme for g in self._trailing(OrderSide.BUY)), default=None)

    def _watching(self) -> list[PositionExit]:
        return [g for g in self.exits.values() if g.status is ExitStatus.ACTIVE]

    def _trailing(self, side: OrderSide) -> list[PositionExit]:
        return [g for g in self._watching() if g.kind is ExitKind.TRAILING_STOP
                and g.side is side and g.extreme is not None]

    def on_price(self, price: Decimal) -> None:
        for group in self._watching():
            if group.status is not ExitStatus.ACTIVE:
                continue  # ended by an exit before it at this price (its position closed)
            if group.kind is ExitKind.TRAILING_STOP:
                if group.follow(self._cause, price):
                    self.touch(group)
                if group.level is not None and triggered(group.side, group.level, price):
                    self._fire(group, "trailing", OrderType.MARKET, None, price)
            elif price <= group.stop_price:
                self._fire_stop(group, price)

    def _fire_stop(self, group: PositionExit, price: Decimal) -> None:
        """The OCO's stop: its take profit is cancelled first (its units are free again),
        then the stop sells, at market or at its stop limit."""
        take_profit = self._leg_order(group.id, "take_profit")
        if take_profit is not None:
            self._cancel(take_profit)
            if take_profit.is_open or group.status is not ExitStatus.ACTIVE:
                return  # the cancel went unanswered, or the take profit filled after all
        group.leg_cancelled(self._cause, leg="take_profit", reason="the stop was reached")
        order_type = OrderType.MARKET if group.stop_limit_price is None else OrderType.LIMIT
        self._fire(group, "stop", order_type, group.stop_limit_price, price)

    def _fire(self, group: PositionExit, leg: str, order_type: OrderType,
              limit: Decimal | None, price: Decimal) -> None:
        position = self.positions.get(group.position_id)
        if position is None:
            return
        amount = group.amount
        if group.side is OrderSide.SELL:
            amount = min(amount, position.units)
        order_id = self.ids.new_id()
        group.trigger(self._cause, leg=leg, order_id=order_id, price=price)
        self.touch(group)
        self.place(position, group.side, order_type, amount, limit, group.id, leg, order_id)

    # --- orders ---------------------------------------------------------------------------

    def place(self, position: Position, side: OrderSide, order_type: OrderType,
              amount: Decimal, price: Decimal | None, exit_id: UUID | None, leg: str,
              order_id: UUID | None = None, judged: Decimal | None = None) -> Order:
        """``judged``: a market buy's price as its check judged it, recorded with the
        order on a live venue, where it may rest (a paper venue fills it at once)."""
        if self._sized is not None:
            amount, price = self._sized(position.pair, side, amount, price)
        else:
            judged = None
        order_id = order_id or self.ids.new_id()
        order = Order.submit(
            order_id, self._cause, client_order_id=order_id.hex, owner_id=position.owner_id,
            exchange_account_id=position.exchange_account_id, pair=position.pair, side=side,
            type=order_type, amount=amount, price=price, purpose=PURPOSE[leg])
        position.order_placed(self._cause, order_id=order_id, exit_id=exit_id, leg=leg,
                              judged_price=judged)
        self.orders[order.client_order_id] = order
        self.roles[order.client_order_id] = (position.id, exit_id, leg)
        self.touch(order)
        self.touch(position)
        request = OrderRequest(order.client_order_id, position.pair, side, order_type, amount,
                               price, position.id.hex)
        self.on_order_update(self.venue.create_order(request))
        return order

    def restore(self, order: Order, role: tuple[UUID, UUID | None, str]) -> None:
        self.orders[order.client_order_id] = order
        self.roles[order.client_order_id] = role

    def _leg_order(self, exit_id: UUID, leg: str) -> Order | None:
        for client_id, (_, group_id, role) in self.roles.items():
            if group_id == exit_id and role == leg and client_id in self.orders:
                return self.orders[client_id]
        return None

    def cancel_exit(self, group: PositionExit, reason: str) -> None:
        """Cancel an exit's resting order (if any), then the exit itself."""
        for client_id, (_, group_id, _leg) in list(self.roles.items()):
            order = self.orders.get(client_id)
            if group_id == group.id and order is not None:
                self._cancel(order)
        if group.is_active:
            group.cancel(self._cause, reason)
            self.touch(group)
        self.exits.pop(group.id, None)

    def _cancel(self, order: Order) -> None:
        if order.exchange_order_id is None:
            return  # never acknowledged: nothing rests
        if order.status is not OrderStatus.CANCEL_REQUESTED:
            order.request_cancel(self._cause)
        self.touch(order)
        self.on_order_update(self.venue.cancel_order(order.exchange_order_id, order.pair))

    def on_order_update(self, update: ExchangeOrder) -> None:
        order = self.orders.get(update.client_order_id)
        if order is None:
            return
        if order.exchange_order_id is None and update.exchange_order_id and update.status \
                not in (OrderStatus.REJECTED, OrderStatus.LOST, OrderStatus.SUBMITTED):
            order.accept(self._cause, update.exchange_order_id, observed=update.observed)
        for trade in update.trades:
            self._trade(order, trade, update.observed)
        status = update.status
        if status is OrderStatus.REJECTED and order.is_open:
            order.reject(self._cause, update.reason or "rejected")
        elif status is OrderStatus.CANCELLED and order.is_open:
            order.cancel(self._cause, update.reason or "cancelled")
        elif status is OrderStatus.LOST and order.is_open:
            order.lose(self._cause, update.reason or "the exchange does not know this order")
        self.touch(order)
        if not order.is_open:
            self.orders.pop(order.client_order_id, None)
            self._finished(order)

    def _trade(self, order: Order, trade, observed: bool) -> None:
        """One trade on the order; a buy's units join its position trade by trade (what
        the account really holds: a live fee in base is not; the fee's value is in
        ``fees``, so cost + fees is what the buy paid)."""
        base, _, quote = order.pair.partition("/")
        fee = (trade.fee_in_quote(base, quote) or ZERO) if observed else trade.fee
        if observed:
            new = order.observe_trade(
                self._cause, trade_id=trade.trade_id, price=trade.price, amount=trade.amount,
                fee=trade.fee, fee_currency=trade.fee_currency, fee_quote=fee,
                exchange_time_ms=trade.time_ms)
        else:
            new = order.fill(self._cause, trade_id=trade.trade_id, price=trade.price,
                             amount=trade.amount, fee=trade.fee,
                             fee_currency=trade.fee_currency)
        position = self.positions.get(self.roles[order.client_order_id][0])
        if new and order.side is OrderSide.BUY and position is not None:
            held = trade.base_held_change(order.side, base) if observed else trade.amount
            position.record_buy(self._cause, order_id=order.id, price=trade.price,
                                amount=held, fee=fee)
            self.touch(position)

    def _finished(self, order: Order) -> None:
        """A final order: a buy's units join its position, a filled sell leaves it (and
        ends its exit, cancelling an OCO's other leg); a refused entry cancels its
        position, a refused exit leg cancels its exit."""
        position_id, exit_id, leg = self.roles.pop(order.client_order_id)
        position = self.positions.get(position_id)
        group = self.exits.get(exit_id) if exit_id else None
        if position is None:
            return
        if order.filled > ZERO:
            self._book_fill(position, order, exit_id, leg)
        if group is not None and group.is_active:
            self._end_exit(group, order, leg)
        if position.status is PositionStatus.PENDING and not self._entering(position.id):
            position.cancel(self._cause, f"the {leg} order was {order.status}: "
                                         f"{order.reason or ''}".rstrip(": "))
        self.touch(position)
        if not position.is_open:
            self._drop(position)

    def _entering(self, position_id: UUID) -> bool:
        """Whether a pending position still has a way in: an open order or an active
        (trailing buy) exit."""
        return any(role[0] == position_id for role in self.roles.values()) or any(
            g.position_id == position_id and g.is_active for g in self.exits.values())

    def _book_fill(self, position: Position, order: Order, exit_id: UUID | None,
                   leg: str) -> None:
        price, amount = order.average_price, order.filled
        if order.side is OrderSide.BUY:
            return  # its trades joined the position one by one (``_trade``)
        position.record_sell(self._cause, order_id=order.id, exit_id=exit_id, price=price,
                             amount=amount, fee=order.fees, reason=leg,
                             closes=self._is_dust(position.pair, position.units - amount))

    def _is_dust(self, pair: str, rest: Decimal) -> bool:
        """Less than a live exchange sells in one order (its amount step or minimum): what
        a sell of everything leaves after rounding. Decided from the exchange's rules, so a
        restarted process decides the same."""
        exchange = getattr(self.venue, "exchange", None)  # live venues only
        rules = exchange.market_rules(pair) if exchange is not None else None
        if rules is None or rest <= ZERO:
            return False
        smallest = max(rules.amount_step or ZERO, rules.min_amount or ZERO)
        return rest < smallest

    def _end_exit(self, group: PositionExit, order: Order, leg: str) -> None:
        if order.status is OrderStatus.FILLED:
            group.leg_filled(self._cause, leg=leg, order_id=order.id,
                             price=_fill_price(order))
            if group.kind is ExitKind.OCO and leg == "take_profit":
                group.leg_cancelled(self._cause, leg="stop",
                                    reason="the take profit filled")
            self.exits.pop(group.id, None)
        elif order.status is not OrderStatus.CANCELLED or group.status \
                is ExitStatus.TRIGGERED:
            group.cancel(self._cause, f"the {leg} order was {order.status}: "
                                      f"{order.reason or ''}")
            self.exits.pop(group.id, None)
        self.touch(group)

    def _drop(self, position: Position) -> None:
        """A closed position: its exits end with it."""
        self.positions.pop(position.id, None)
        for group in [g for g in self.exits.values() if g.position_id == position.id]:
            self.cancel_exit(group, f"the position is {position.status}")

    def close(self, position: Position, reason: str, leg: str = "close") -> Order | None:
        """Cancel every exit of ``position`` and sell what it holds at market (``leg``:
        close, or emergency_exit: the position's close reason)."""
        for group in [g for g in self.exits.values() if g.position_id == position.id]:
            self.cancel_exit(group, reason)
        for client_id, (position_id, _, role) in list(self.roles.items()):
            if position_id == position.id and role == "entry":
                self._cancel(self.orders[client_id])
        if position.units == ZERO:
            if position.status is PositionStatus.PENDING:
                position.cancel(self._cause, reason)  # nothing bought: nothing to sell
                self.touch(position)
                self._drop(position)
            return None
        return self.place(position, OrderSide.SELL, OrderType.MARKET, position.units, None,
                          None, leg)

    def held_by_exits(self, position_id: UUID) -> Decimal:
        return sum((g.amount for g in self.exits.values() if g.position_id == position_id
                    and g.side is OrderSide.SELL), ZERO)


def refusal_of(changes: list[TradetapeAggregate]) -> str | None:
    """The reason the venue gave for an order it refused in these changes, if any."""
    for aggregate in changes:
        if isinstance(aggregate, Order) and aggregate.status is OrderStatus.REJECTED:
            return aggregate.reason
    return None


def _fill_price(order: Order) -> Decimal | None:
    """The price a leg filled at: its limit price when all of it traded there (cost over
    amount would round in its last digit: 100 USDT of units sold at 87261.75516 read back as
    ...0002), else the average."""
    if order.price is not None and order.filled > ZERO and order.cost == order.price * order.filled:
        return order.price
    return order.average_price

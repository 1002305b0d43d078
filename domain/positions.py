"""A user's own position outside any bot, and the exits attached to it.

``Position``: units of a pair's base asset on one exchange account, bought by a market or
limit order (``entry`` ``market``/``limit``) or adopted from a holding (``adopted``). Its
units, cost and proceeds come only from its events.

``PositionExit``: one order group attached to a position. ``oco``: a take-profit limit sell
and a stop for ``amount``; when one leg fills the other is cancelled in the same step.
``trailing_stop``: a stop following the highest price (sell) or the lowest (buy, adding to
the position). Its moving level is recorded each time it moves (``LevelMoved``), so the
level shown is the level the engine holds, after a restart too.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.errors import DomainError, InvalidTransitionError
from domain.money import ZERO
from domain.orders import OrderSide
from domain.recording import Cause, TradetapeAggregate, ValueEnum
from domain.trailing import activated, trail_level


class PositionStatus(ValueEnum):
    PENDING = "pending"  # the entry order has not filled yet
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"  # the entry never filled


class ExitKind(ValueEnum):
    OCO = "oco"
    TRAILING_STOP = "trailing_stop"


class ExitStatus(ValueEnum):
    ACTIVE = "active"
    TRIGGERED = "triggered"  # a leg's order is out, not yet filled
    FILLED = "filled"
    CANCELLED = "cancelled"


class Position(TradetapeAggregate):
    owner_id: str
    exchange_account_id: str
    pair: str
    entry: str
    status: PositionStatus
    units: Decimal
    units_bought: Decimal
    cost: Decimal
    fees: Decimal
    proceeds: Decimal
    close_reason: str | None
    orders: list[tuple[UUID, UUID | None, str]]  # (order id, exit id, leg), as sent
    entry_judged: Decimal | None  # a market entry that may rest: the price it was judged at
    opened_at: datetime
    closed_at: datetime | None

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        pass

    class Opened(TradetapeAggregate.Created, Event):
        owner_id: str
        exchange_account_id: str
        pair: str
        entry: str

        def apply(self, position: Position) -> None:
            position.__dict__.update(
                owner_id=self.owner_id, exchange_account_id=self.exchange_account_id,
                pair=self.pair, entry=self.entry, status=PositionStatus.PENDING, units=ZERO,
                units_bought=ZERO, cost=ZERO, fees=ZERO, proceeds=ZERO, close_reason=None,
                opened_at=self.timestamp, closed_at=None, orders=[], entry_judged=None)

    class Bought(Event):
        order_id: UUID | None  # None: adopted from a holding
        price: Decimal
        amount: Decimal
        fee: Decimal

        def apply(self, position: Position) -> None:
            position.units += self.amount
            position.units_bought += self.amount
            position.cost += self.price * self.amount
            position.fees += self.fee
            position.status = PositionStatus.OPEN

    class Sold(Event):
        order_id: UUID
        exit_id: UUID | None  # None: closed by hand (closePosition, emergency exit)
        price: Decimal
        amount: Decimal
        fee: Decimal

        def apply(self, position: Position) -> None:
            position.units -= self.amount
            position.proceeds += self.price * self.amount
            position.fees += self.fee

    class DustLeft(Event):
        """What an exchange's amount step left unsold when the position closed: still on
        the account, no longer the position's."""

        amount: Decimal

        def apply(self, position: Position) -> None:
            position.units -= self.amount

    class OrderPlaced(Event):
        """An order for this position was sent: ``leg`` is entry, take_profit, stop,
        trailing or close; ``exit_id`` names the exit it belongs to, if any;
        ``judged_price``: a market entry that may rest (a live venue), the price it was
        judged at (what it commits while it may fill, for every process's risk limits)."""

        class_version = 2
        order_id: UUID
        exit_id: UUID | None
        leg: str
        judged_price: Decimal | None

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["judged_price"] = None  # (version 1 kept it in the sender's memory only)

        def apply(self, position: Position) -> None:
            position.orders.append((self.order_id, self.exit_id, self.leg))
            if self.judged_price is not None:
                position.entry_judged = self.judged_price

    class Closed(Event):
        reason: str

        def apply(self, position: Position) -> None:
            position.status, position.close_reason = PositionStatus.CLOSED, self.reason
            position.closed_at = self.timestamp
            position.units = ZERO  # everything sold: exactly, not a 0E-31 remainder

    class Cancelled(Event):
        reason: str

        def apply(self, position: Position) -> None:
            position.status, position.close_reason = PositionStatus.CANCELLED, self.reason
            position.closed_at = self.timestamp

    @classmethod
    def open(cls, position_id: UUID, cause: Cause, *, owner_id: str,
             exchange_account_id: str, pair: str, entry: str) -> Position:
        return cls._start(cls.Opened, position_id, cause, owner_id=owner_id,
                          exchange_account_id=exchange_account_id, pair=pair, entry=entry)

    @property
    def is_open(self) -> bool:
        return self.status in (PositionStatus.PENDING, PositionStatus.OPEN)

    @property
    def entry_price(self) -> Decimal | None:
        """What a unit cost on average (fees excluded)."""
        return self.cost / self.units_bought if self.units_bought else None

    @property
    def realized_pnl(self) -> Decimal | None:
        if self.status is not PositionStatus.CLOSED:
            return None
        return self.proceeds - self.cost - self.fees

    def record_buy(self, cause: Cause, *, order_id: UUID | None, price: Decimal,
                   amount: Decimal, fee: Decimal) -> None:
        if not self.is_open:
            raise InvalidTransitionError(f"the position is {self.status}",
                                         code="POSITION_NOT_OPEN")
        self._record(self.Bought, cause, order_id=order_id, price=price, amount=amount,
                     fee=fee)

    def record_sell(self, cause: Cause, *, order_id: UUID, exit_id: UUID | None,
                    price: Decimal, amount: Decimal, fee: Decimal, reason: str,
                    closes: bool = False) -> None:
        """``closes``: the sell was of everything held; what a live exchange's amount step
        left is recorded as dust (``DustLeft``) and the position closes all the same."""
        if amount > self.units:
            raise DomainError(f"a sell of {amount} exceeds the {self.units} held",
                              code="POSITION_OVERSOLD")
        self._record(self.Sold, cause, order_id=order_id, exit_id=exit_id, price=price,
                     amount=amount, fee=fee)
        if closes and self.units > ZERO:
            self._record(self.DustLeft, cause, amount=self.units)
        if self.units == ZERO:
            self._record(self.Closed, cause, reason=reason)

    def order_placed(self, cause: Cause, *, order_id: UUID, exit_id: UUID | None,
                     leg: str, judged_price: Decimal | None = None) -> None:
        self._record(self.OrderPlaced, cause, order_id=order_id, exit_id=exit_id, leg=leg,
                     judged_price=judged_price)

    def cancel(self, cause: Cause, reason: str) -> None:
        """A pending position whose entry never filled (refused, or cancelled)."""
        if self.status is not PositionStatus.PENDING:
            raise InvalidTransitionError(f"the position is {self.status}",
                                         code="POSITION_NOT_OPEN")
        self._record(self.Cancelled, cause, reason=reason)


class PositionExit(TradetapeAggregate):
    position_id: UUID
    owner_id: str
    kind: ExitKind
    side: OrderSide
    amount: Decimal
    take_profit_price: Decimal | None
    stop_price: Decimal | None
    stop_limit_price: Decimal | None
    trail_percent: Decimal | None
    trail_amount: Decimal | None
    activation_price: Decimal | None
    extreme: Decimal | None  # trailing: highest (sell) or lowest (buy) since activation
    level: Decimal | None  # trailing: the stop price the extreme gives
    status: ExitStatus
    leg: str | None  # the leg whose order is out or filled: take_profit, stop, trailing
    fill_price: Decimal | None
    reason: str | None
    attached_at: datetime

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        pass

    class Attached(TradetapeAggregate.Created, Event):
        position_id: UUID
        owner_id: str
        kind: ExitKind
        side: OrderSide
        amount: Decimal
        take_profit_price: Decimal | None
        stop_price: Decimal | None
        stop_limit_price: Decimal | None
        trail_percent: Decimal | None
        trail_amount: Decimal | None
        activation_price: Decimal | None

        def apply(self, group: PositionExit) -> None:
            group.__dict__.update(
                position_id=self.position_id, owner_id=self.owner_id, kind=self.kind,
                side=self.side, amount=self.amount, take_profit_price=self.take_profit_price,
                stop_price=self.stop_price, stop_limit_price=self.stop_limit_price,
                trail_percent=self.trail_percent, trail_amount=self.trail_amount,
                activation_price=self.activation_price, extreme=None, level=None,
                status=ExitStatus.ACTIVE, leg=None, fill_price=None, reason=None,
                attached_at=self.timestamp)

    class LevelMoved(Event):
        """Trailing: the extreme moved the favourable way (or trailing started at it)."""

        extreme: Decimal
        level: Decimal

        def apply(self, group: PositionExit) -> None:
            group.extreme, group.level = self.extreme, self.level

    class Triggered(Event):
        """A leg's order was sent: ``leg`` is take_profit, stop or trailing."""

        leg: str
        order_id: UUID
        price: Decimal  # the market price that triggered it

        def apply(self, group: PositionExit) -> None:
            group.status, group.leg = ExitStatus.TRIGGERED, self.leg

    class LegFilled(Event):
        leg: str
        order_id: UUID
        price: Decimal

        def apply(self, group: PositionExit) -> None:
            group.status, group.leg, group.fill_price = ExitStatus.FILLED, self.leg, self.price

    class LegCancelled(Event):
        """The other leg of an OCO, cancelled in the step its partner filled or fired."""

        leg: str
        reason: str

        def apply(self, group: PositionExit) -> None:
            pass

    class Cancelled(Event):
        reason: str

        def apply(self, group: PositionExit) -> None:
            group.status, group.reason = ExitStatus.CANCELLED, self.reason

    @classmethod
    def attach(cls, exit_id: UUID, cause: Cause, *, position_id: UUID, owner_id: str,
               kind: ExitKind, side: OrderSide, amount: Decimal,
               take_profit_price: Decimal | None = None, stop_price: Decimal | None = None,
               stop_limit_price: Decimal | None = None, trail_percent: Decimal | None = None,
               trail_amount: Decimal | None = None,
               activation_price: Decimal | None = None) -> PositionExit:
        return cls._start(
            cls.Attached, exit_id, cause, position_id=position_id, owner_id=owner_id,
            kind=kind, side=side, amount=amount, take_profit_price=take_profit_price,
            stop_price=stop_price, stop_limit_price=stop_limit_price,
            trail_percent=trail_percent, trail_amount=trail_amount,
            activation_price=activation_price)

    @property
    def is_active(self) -> bool:
        return self.status in (ExitStatus.ACTIVE, ExitStatus.TRIGGERED)

    def follow(self, cause: Cause, price: Decimal) -> bool:
        """A trailing stop sees the market at ``price``: activation, then a new extreme
        moves the level (recorded). True when the level changed."""
        if self.kind is not ExitKind.TRAILING_STOP or self.status is not ExitStatus.ACTIVE:
            return False
        if self.extreme is None:
            if not activated(self.side, self.activation_price, price):
                return False
        elif not (price > self.extreme if self.side is OrderSide.SELL
                  else price < self.extreme):
            return False
        level = trail_level(self.side, price, self.trail_percent, self.trail_amount)
        self._record(self.LevelMoved, cause, extreme=price, level=level)
        return True

    def trigger(self, cause: Cause, *, leg: str, order_id: UUID, price: Decimal) -> None:
        self._check_active()
        self._record(self.Triggered, cause, leg=leg, order_id=order_id, price=price)

    def leg_filled(self, cause: Cause, *, leg: str, order_id: UUID, price: Decimal) -> None:
        self._check_active()
        self._record(self.LegFilled, cause, leg=leg, order_id=order_id, price=price)

    def leg_cancelled(self, cause: Cause, *, leg: str, reason: str) -> None:
        self._record(self.LegCancelled, cause, leg=leg, reason=reason)

    def cancel(self, cause: Cause, reason: str) -> None:
        self._check_active()
        self._record(self.Cancelled, cause, reason=reason)

    def _check_active(self) -> None:
        if not self.is_active:
            raise InvalidTransitionError(f"the exit is {self.status}", code="EXIT_NOT_ACTIVE")

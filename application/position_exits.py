"""The exits of a position: an OCO (a take profit resting on the venue, a stop held by
the desk) and trailing stops, a sell following the highest price, or a buy (adding to the
position) the lowest, which asks the owner's risk limits first as a new position does."""

from __future__ import annotations

from contextlib import nullcontext
from decimal import Decimal
from uuid import UUID

from application.position_commands import PositionCommands
from application.position_desk import PositionDesk, refusal_of
from application.position_exposure import committed_by, fire_bound
from application.position_input import AMOUNT, Trail, trail_of
from domain.errors import DomainError
from domain.money import ZERO
from domain.numbers import PRICE, parse_number
from domain.orders import OrderSide, OrderType
from domain.positions import ExitKind, ExitStatus, Position, PositionExit
from domain.recording import Cause
from domain.trailing import check_oco_prices


class PositionExits(PositionCommands):
    def add_oco(self, owner_id: UUID, position_id: UUID | None, *, take_profit_price,
                stop_price, stop_limit_price=None, amount=None) -> PositionExit:
        take_profit = parse_number(take_profit_price, "take_profit_price", PRICE)
        stop = parse_number(stop_price, "stop_price", PRICE)
        stop_limit = (None if stop_limit_price is None
                      else parse_number(stop_limit_price, "stop_limit_price", PRICE))
        self._check_not_halted()
        with self.paper.lock:
            position, desk = self._open_position(owner_id, position_id)
            check_oco_prices(take_profit, stop, stop_limit, self._price(desk))
            units = self._exit_amount(desk, position, amount)
            cause = self._begin(desk, owner_id)
            group = PositionExit.attach(
                self.trading.ids.new_id(), cause, position_id=position.id,
                owner_id=str(owner_id), kind=ExitKind.OCO, side=OrderSide.SELL, amount=units,
                take_profit_price=take_profit, stop_price=stop, stop_limit_price=stop_limit)
            desk.exits[group.id] = group
            desk.touch(group)
            desk.place(position, OrderSide.SELL, OrderType.LIMIT, units, take_profit,
                       group.id, "take_profit")
            changes = self._save(desk, group)
            if group.status is ExitStatus.CANCELLED:  # the venue refused the take profit
                raise DomainError(f"the venue refused the take profit: {refusal_of(changes)}",
                                  code="ORDER_REJECTED")
            return group

    def add_trailing_stop(self, owner_id: UUID, position_id: UUID | None, *,
                          side: OrderSide = OrderSide.SELL, trail: Trail,
                          amount=None) -> PositionExit:
        """A sell stop follows the highest price; a buy stop (adding ``amount`` units to
        the position) follows the lowest. Without an activation price it starts trailing
        at the current price."""
        buys = side is OrderSide.BUY
        if buys:  # (an emergency stop places no buy; a sell stop may still close)
            self._check_not_halted()
        with self.paper.lock, self._hold(owner_id) if buys else nullcontext():
            position, desk = self._open_position(owner_id, position_id)
            if not buys:
                units = self._exit_amount(desk, position, amount)
            elif amount is None:
                raise DomainError("a buy stop needs the amount to buy", code="AMOUNT_REQUIRED",
                                  field="amount")
            else:
                self._check_exit_room(desk, position)
                units = parse_number(amount, "amount", AMOUNT)
                self._check_added_buy(desk, position, units, trail)
            cause = self._begin(desk, owner_id)
            group = self._trailing(desk, position, cause, side, units, trail)
            self._save(desk, group)
            return group

    def _trailing(self, desk: PositionDesk, position: Position, cause: Cause,
                  side: OrderSide, units: Decimal, trail: Trail) -> PositionExit:
        price = self._price(desk)
        pct, distance, activation = trail_of(trail, price)
        group = PositionExit.attach(
            self.trading.ids.new_id(), cause, position_id=position.id,
            owner_id=position.owner_id, kind=ExitKind.TRAILING_STOP, side=side, amount=units,
            trail_percent=pct, trail_amount=distance, activation_price=activation)
        group.follow(cause, price)  # trailing from now (unless waiting to activate)
        desk.exits[group.id] = group
        desk.touch(group)
        return group

    def _check_added_buy(self, desk: PositionDesk, position: Position, units: Decimal,
                         trail: Trail) -> None:
        """A buy trailing stop added to ``position`` asks the owner's limits first, with
        what it can buy at most (``units`` at the level it can fire at) beside what the
        position commits already (``maxPositionQuote``)."""
        if self.risk_check is None:
            return
        price = self._price(desk)
        adds = units * fire_bound(OrderSide.BUY, price, *trail_of(trail, price))
        committed = committed_by(self.trading, [position],
                                 self.index.buy_exits([position.id]))
        self.risk_check(position.owner_id, adds, committed)

    def cancel_exit(self, owner_id: UUID, exit_id: UUID | None) -> PositionExit:
        with self.paper.lock:
            group = self._owned(owner_id, exit_id, PositionExit, "exit")
            if not group.is_active:
                raise DomainError(f"the exit is {group.status}", code="EXIT_NOT_ACTIVE")
            _position, desk = self._open_position(owner_id, group.position_id)
            group = desk.exits.get(group.id, group)
            self._begin(desk, owner_id)
            desk.cancel_exit(group, "cancelled by its owner")
            self._save(desk, group)
            return group

    def _check_exit_room(self, desk: PositionDesk, position: Position) -> None:
        active = [g for g in desk.exits.values() if g.position_id == position.id]
        if len(active) >= self.max_exits:
            raise DomainError(f"at most {self.max_exits} active exits a position: cancel "
                              "one first", code="EXIT_LIMIT_REACHED")

    def _exit_amount(self, desk: PositionDesk, position: Position, amount) -> Decimal:
        """All that no other exit sells, or ``amount`` of it."""
        self._check_exit_room(desk, position)
        free = position.units - desk.held_by_exits(position.id)
        units = free if amount is None else parse_number(amount, "amount", AMOUNT)
        if position.units == ZERO:
            raise DomainError("the position holds nothing yet (its entry has not filled)",
                              code="POSITION_NOT_OPEN")
        if units <= ZERO or units > free:
            raise DomainError(f"the exits of this position may sell {free} more",
                              code="EXIT_AMOUNT_TOO_LARGE", field="amount")
        return units

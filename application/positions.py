"""Positions: a user's own positions outside any bot, with OCO and trailing-stop exits.

Every command is checked here against the aggregates (GraphQL and the emergency exit call
these methods), then carried out by the market's ``PositionDesk`` under the
paper runner's lock, so a command never lands between a step's decision and its save.
Another user's position or exit is "not found".
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from application.exchange_accounts import trading_refusal
from application.position_commands import MAX_EXITS, MAX_OPEN_POSITIONS, RiskCheck
from application.position_desk import PositionDesk, refusal_of
from application.position_exits import PositionExits
from application.position_exposure import committed_by, fire_bound
from application.position_input import AMOUNT, QUOTE, Trail, checked_pair, size_of, trail_of
from domain.accounts import AccountKind
from domain.errors import DomainError, NotFoundError
from domain.money import ZERO
from domain.numbers import PRICE, parse_number
from domain.orders import Order, OrderSide, OrderType
from domain.ports import OrderRequest
from domain.positions import Position, PositionExit
from domain.recording import Cause
from domain.risk import Exposure
from domain.users import User

__all__ = ["MAX_EXITS", "MAX_OPEN_POSITIONS", "QUOTE", "PositionView", "Positions", "RiskCheck",
           "Trail", "checked_pair"]
log = logging.getLogger("tradetape.positions")


class PositionView(NamedTuple):
    """A position as its owner reads it: with its exits and its orders (by leg)."""

    position: Position
    exits: list[PositionExit]
    orders: list[tuple[str, Order]]


class Positions(PositionExits):
    """Opening, adopting, closing and reading positions; their exits are
    ``PositionExits``'s, the shared steps ``PositionCommands``'s."""

    # --- opening --------------------------------------------------------------------------

    def open_position(self, owner_id: UUID, *, exchange_account_id: str | None, pair: str,
                      quote_amount: Decimal | None = None, amount: Decimal | None = None,
                      limit_price: Decimal | None = None,
                      trail: Trail | None = None) -> Position:
        """A market buy (a limit buy at ``limit_price``; a trailing buy stop with ``trail``)
        of ``quote_amount`` worth (at the limit, else at the current price), or of
        ``amount`` units. A refused buy is recorded and raised (``ORDER_REJECTED``)."""
        account = self._account(owner_id, exchange_account_id, pair)
        if (quote_amount is None) == (amount is None):
            raise DomainError("give exactly one of quoteAmount and amount",
                              code="AMOUNT_REQUIRED", field="quote_amount")
        if trail is not None and limit_price is not None:
            raise DomainError("a trailing entry has no limit price", code="INVALID_ENTRY",
                              field="limit_price")
        limit = None if limit_price is None else parse_number(limit_price, "limit_price",
                                                              PRICE)
        self._check_not_halted()
        with self.paper.lock, self._hold(owner_id):
            desk = self.paper.desk(account, pair)
            units, quote = self._entry_size(desk, limit, quote_amount, amount, trail)
            if self.risk_check is not None:
                self.risk_check(owner_id, quote)  # before any order is sent
            cause = self._begin(desk, owner_id)
            entry = "trailing" if trail else "market" if limit is None else "limit"
            position = Position.open(self.trading.ids.new_id(), cause, owner_id=str(owner_id),
                                     exchange_account_id=account, pair=pair, entry=entry)
            desk.positions[position.id] = position
            self._enter(desk, position, cause, units, limit, trail)
            changes = self._save(desk, position)
            if not position.is_open:
                raise DomainError(f"the venue refused the buy: {refusal_of(changes)}",
                                  code="ORDER_REJECTED")
            return position

    def _entry_size(self, desk: PositionDesk, limit: Decimal | None, quote_amount, amount,
                    trail: Trail | None) -> tuple[Decimal, Decimal]:
        """(units, the quote the entry commits): at the limit, else the current price; a
        trailing entry at the level it can fire at, at most."""
        price = limit or self._price(desk)
        units, quote = size_of(price, quote_amount, amount)
        if trail is not None:
            quote = units * fire_bound(OrderSide.BUY, price, *trail_of(trail, price))
        return units, quote

    def _enter(self, desk: PositionDesk, position: Position, cause: Cause, units: Decimal,
               limit: Decimal | None, trail: Trail | None) -> None:
        """The entry: a trailing buy stop, a limit buy or a market buy."""
        if trail is not None:
            self._trailing(desk, position, cause, OrderSide.BUY, units, trail)
        elif limit is not None:
            desk.place(position, OrderSide.BUY, OrderType.LIMIT, units, limit, None, "entry")
        else:  # counted at the price it was judged at while it may still fill (live)
            desk.place(position, OrderSide.BUY, OrderType.MARKET, units, None, None,
                       "entry", judged=self._price(desk))

    def adopt_position(self, owner_id: UUID, *, exchange_account_id: str | None, pair: str,
                       amount: Decimal, entry_price: Decimal | None = None) -> Position:
        """Manage ``amount`` units the account already holds (no order is sent), at
        ``entry_price`` (default: the current price) as their cost."""
        account = self._account(owner_id, exchange_account_id, pair)
        units = parse_number(amount, "amount", AMOUNT)
        with self.paper.lock:
            desk = self.paper.desk(account, pair)
            price = (self._price(desk) if entry_price is None
                     else parse_number(entry_price, "entry_price", PRICE))
            free = desk.venue.fetch_balance().get(pair.partition("/")[0])
            held = sum((p.units for p in desk.positions.values()), ZERO)
            if free is None or units > free.free - held:
                raise DomainError(f"the account holds {free.free if free else 0} free, "
                                  f"{held} of it in other positions", code="INSUFFICIENT_HOLDING",
                                  field="amount")
            cause = self._begin(desk, owner_id)
            position = Position.open(self.trading.ids.new_id(), cause, owner_id=str(owner_id),
                                     exchange_account_id=account, pair=pair, entry="adopted")
            position.record_buy(cause, order_id=None, price=price, amount=units, fee=ZERO)
            desk.positions[position.id] = position
            desk.touch(position)
            self._save(desk, position)
            return position

    # --- closing --------------------------------------------------------------------------

    def close_position(self, owner_id: UUID, position_id: UUID | None,
                       cause: Cause | None = None, emergency: bool = False) -> Position:
        """Cancel every exit and sell everything at market (a pending entry is cancelled).
        ``CLOSE_REJECTED`` when the venue refuses the sell: the position stays open."""
        with self.paper.lock:
            position, desk = self._open_position(owner_id, position_id)
            desk.begin_step(cause or self.trading.cause(str(owner_id)))
            if emergency:
                desk.close(position, "emergency exit", "emergency_exit")
            else:
                desk.close(position, "closed by its owner")
            changes = self._save(desk, position)
            if position.units > ZERO:
                raise DomainError(f"the venue refused the market sell: "
                                  f"{refusal_of(changes) or 'not filled'}",
                                  code="CLOSE_REJECTED")
            return position

    def exit_all(self, owner_id: UUID, cause: Cause) -> None:
        """The emergency exit's part: every exit of ``owner_id`` cancelled and every open
        position sold at market, each event carrying ``cause`` (its correlation id). A
        position whose sell is refused stays open; the others are still closed."""
        for position_id in self.index.open_of(str(owner_id)):
            try:
                self.close_position(owner_id, position_id, cause, emergency=True)
            except DomainError as error:
                log.warning("emergency exit: position %s stays open: %s", position_id,
                            error.code)

    # --- reading --------------------------------------------------------------------------

    def list(self, owner_id: UUID) -> list[PositionView]:
        """The owner's positions, newest first, each with its exits and orders (oldest
        first)."""
        return [self.view(self.trading.load(position_id, Position))
                for position_id in reversed(self.index.of(str(owner_id)))]

    def exposure_of(self, owner_id: str) -> Exposure:
        """What the owner's open positions commit, for their risk limits: the cost of the
        units they hold and what their buys can still fill (application/position_exposure.py;
        ``maxExposureQuote`` counts positions beside deals)."""
        ids = self.index.of(str(owner_id))
        positions = self.trading.load_many(ids, Position) if ids else {}
        exits = self.index.buy_exits(list(positions))
        return Exposure(0, committed_by(self.trading, positions.values(), exits))

    def view(self, position: Position) -> PositionView:
        exits = [self.trading.load(e, PositionExit) for e in self.index.exits(position.id)]
        orders = [(leg, self.trading.load(order_id, Order))
                  for order_id, _, leg in position.orders]
        return PositionView(position, exits, orders)

    def resume(self) -> int:
        """After a restart: every open position back on its market's desk, its active
        exits and its open orders with it. Returns how many. The positions, their exits and
        their orders are loaded together, each once (``Trading.load_many``)."""
        with self.paper.lock:
            positions = self.index.open_positions()
            exits = self.trading.load_many(
                [e for p in positions for e in self.index.exits(p.id)], PositionExit)
            orders = self.trading.load_many(
                [order_id for p in positions for order_id, _, _ in p.orders], Order)
            for position in positions:
                desk = self.paper.desk(position.exchange_account_id, position.pair)
                self._restore(desk, position, exits, orders)
            return len(positions)

    def _restore(self, desk: PositionDesk, position: Position,
                 exits: dict[UUID, PositionExit], orders: dict[UUID, Order]) -> None:
        desk.positions[position.id] = position
        desk.venue.restore_position(position.id.hex, position.units)
        for exit_id in self.index.exits(position.id):
            # one missing from the batch is loaded alone: it says why (NOT_FOUND)
            group = exits.get(exit_id) or self.trading.load(exit_id, PositionExit)
            if group.is_active:
                desk.exits[group.id] = group
        for order_id, exit_id, leg in position.orders:
            order = orders.get(order_id) or self.trading.load(order_id, Order)
            if order.is_open:
                desk.restore(order, (position.id, exit_id, leg))
                desk.venue.restore_resting(_request_of(order, position), order.exchange_order_id)

    def _account(self, owner_id: UUID, account_id: str | None, pair: str) -> str:
        """The account a new position is opened on, once every rule allows it."""
        checked_pair(pair)
        if len(self.index.open_of(str(owner_id))) >= self.max_open_positions:
            raise DomainError(f"at most {self.max_open_positions} open positions: close one "
                              "first", code="POSITION_LIMIT_REACHED")
        if self.traded_pair is not None and pair != self.traded_pair:
            raise DomainError(f"this server's paper market trades {self.traded_pair} only",
                              code="PAIR_NOT_TRADED", field="pair")
        if account_id is None:
            return str(self.trading.load(owner_id, User).paper_account_id)
        try:
            account = self.trading.get_account(UUID(account_id))
        except (ValueError, NotFoundError):
            account = None
        if account is None or account.owner_id != str(owner_id) or account.removed:
            raise NotFoundError("no such exchange account of yours",
                                field="exchange_account_id")
        refusal = trading_refusal(account, self.allow_live)
        if refusal is not None:
            raise refusal
        if account.kind is AccountKind.LIVE:
            if self.paper.live_venues is None:
                raise DomainError("this server trades on paper only",
                                  code="LIVE_TRADING_UNAVAILABLE")
            if not self.trading.load(owner_id, User).email_verified:
                raise DomainError("verify your email address before trading live",
                                  code="EMAIL_NOT_VERIFIED")
        return account_id


def _request_of(order: Order, position: Position) -> OrderRequest:
    return OrderRequest(order.client_order_id, order.pair, order.side, order.type,
                        order.remaining, order.price, position.id.hex)

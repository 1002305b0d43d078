"""Positions: a user's own positions outside any bot, with OCO and trailing-stop exits.

Every command is checked here against the aggregates (GraphQL and the emergency exit call
these methods), then carried out by the market's ``PositionDesk`` under the
paper runner's lock, so a command never lands between a step's decision and its save.
Another user's position or exit is "not found".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

from application.exchange_accounts import trading_refusal
from application.paper_trading import PaperTrading
from application.position_desk import PositionDesk, refusal_of
from application.position_index import PositionIndex
from application.trading import Trading
from domain.accounts import AccountKind
from domain.dca import PAIR_MAX
from domain.errors import DomainError, NotFoundError
from domain.money import ZERO
from domain.numbers import PRICE, Bounds, parse_number
from domain.orders import Order, OrderSide, OrderType
from domain.ports import OrderRequest
from domain.positions import ExitKind, ExitStatus, Position, PositionExit, PositionStatus
from domain.recording import Cause
from domain.risk import Exposure
from domain.text import checked_text
from domain.trailing import check_oco_prices, check_trail
from domain.users import User

log = logging.getLogger("tradetape.positions")
D = Decimal
QUOTE = Bounds(D("0.00000001"), D("1e12"), sign_code="NOT_POSITIVE")
AMOUNT = Bounds(D("1e-12"), D("1e12"), sign_code="NOT_POSITIVE")
MAX_OPEN_POSITIONS = 100  # an owner's open or pending positions
MAX_EXITS = 10  # active exits of one position
RiskCheck = Callable[[UUID, Decimal], None]  # (owner, quote the position adds) -> or raise


class PositionView(NamedTuple):
    """A position as its owner reads it: with its exits and its orders (by leg)."""

    position: Position
    exits: list[PositionExit]
    orders: list[tuple[str, Order]]


class Trail(NamedTuple):
    """A trailing stop's distance (one of the two) and its optional activation price."""

    percent: Decimal | None = None
    amount: Decimal | None = None
    activation_price: Decimal | None = None


class Positions:
    def __init__(self, trading: Trading, paper: PaperTrading, *,
                 traded_pair: str | None = None, allow_live: bool = False,
                 risk_check: RiskCheck | None = None):
        """``risk_check``: the owner's risk limits (application/risk_limits.py), called
        before any order of a new position is sent; None: no limits."""
        self.trading, self.paper, self.traded_pair = trading, paper, traded_pair
        self.allow_live, self.risk_check = allow_live, risk_check
        self.max_open_positions, self.max_exits = MAX_OPEN_POSITIONS, MAX_EXITS
        self.index = PositionIndex(trading)

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
            units, quote = _size(limit or self._price(desk), quote_amount, amount)
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

    def _hold(self, owner_id: UUID) -> AbstractContextManager[None]:
        """The owner's hold for a new position's check and write, when the risk check
        has one (``PositionGate.hold``: other processes' buys of theirs wait for it)."""
        hold = getattr(self.risk_check, "hold", None)
        return hold(owner_id) if hold is not None else nullcontext()

    def _enter(self, desk: PositionDesk, position: Position, cause: Cause, units: Decimal,
               limit: Decimal | None, trail: Trail | None) -> None:
        """The entry: a trailing buy stop, a limit buy or a market buy."""
        if trail is not None:
            self._trailing(desk, position, cause, OrderSide.BUY, units, trail)
        else:
            desk.place(position, OrderSide.BUY, OrderType.LIMIT if limit else
                       OrderType.MARKET, units, limit, None, "entry")

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

    # --- exits ----------------------------------------------------------------------------

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
        with self.paper.lock:
            position, desk = self._open_position(owner_id, position_id)
            if side is OrderSide.SELL:
                units = self._exit_amount(desk, position, amount)
            elif amount is None:
                raise DomainError("a buy stop needs the amount to buy", code="AMOUNT_REQUIRED",
                                  field="amount")
            else:
                self._check_exit_room(desk, position)
                units = parse_number(amount, "amount", AMOUNT)
            cause = self._begin(desk, owner_id)
            group = self._trailing(desk, position, cause, side, units, trail)
            self._save(desk, group)
            return group

    def _trailing(self, desk: PositionDesk, position: Position, cause: Cause,
                  side: OrderSide, units: Decimal, trail: Trail) -> PositionExit:
        pct = None if trail.percent is None else parse_number(trail.percent, "trail_percent")
        distance = (None if trail.amount is None
                    else parse_number(trail.amount, "trail_amount", PRICE))
        activation = (None if trail.activation_price is None
                      else parse_number(trail.activation_price, "activation_price", PRICE))
        price = self._price(desk)
        check_trail(pct, distance, price)
        group = PositionExit.attach(
            self.trading.ids.new_id(), cause, position_id=position.id,
            owner_id=position.owner_id, kind=ExitKind.TRAILING_STOP, side=side, amount=units,
            trail_percent=pct, trail_amount=distance, activation_price=activation)
        group.follow(cause, price)  # trailing from now (unless waiting to activate)
        desk.exits[group.id] = group
        desk.touch(group)
        return group

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
        """What the owner's open positions commit, for their risk limits: each one's cost of
        the units it still holds (``maxExposureQuote`` counts positions beside deals)."""
        committed = ZERO
        for position_id in self.index.of(str(owner_id)):
            position = self.trading.load(position_id, Position)
            if position.status is PositionStatus.OPEN and position.units_bought > ZERO:
                committed += position.cost * position.units / position.units_bought
        return Exposure(0, committed)

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

    # --- helpers --------------------------------------------------------------------------

    def _begin(self, desk: PositionDesk, owner_id: UUID) -> Cause:
        cause = self.trading.cause(str(owner_id))
        desk.begin_step(cause)
        return cause

    def _save(self, desk: PositionDesk, *also) -> list:
        changes = desk.take_changes()
        for aggregate in also:
            if aggregate not in changes:
                changes.append(aggregate)
        self.paper.save_aggregates(changes)
        self.index.catch_up()
        return changes

    def _price(self, desk: PositionDesk) -> Decimal:
        price = getattr(desk.venue, "price", None)
        if price is None:
            raise DomainError("no market price yet: try again after the next candle",
                              code="NO_MARKET_PRICE")
        return price

    def _check_not_halted(self) -> None:
        """An emergency stop: no order that buys or rests is placed (closing still sells)."""
        if self.trading.is_halted():
            raise DomainError("trading is halted by an operator's emergency stop",
                              code="TRADING_HALTED")

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

    def _owned(self, owner_id: UUID, aggregate_id: UUID | None, kind, name: str):
        try:
            found = self.trading.load(aggregate_id, kind) if aggregate_id else None
        except NotFoundError:
            found = None
        if found is None or found.owner_id != str(owner_id):
            raise NotFoundError(f"no {name} {aggregate_id}", field="id")
        return found

    def _open_position(self, owner_id: UUID,
                       position_id: UUID | None) -> tuple[Position, PositionDesk]:
        stored = self._owned(owner_id, position_id, Position, "position")
        desk = self.paper.desk(stored.exchange_account_id, stored.pair)
        position = desk.positions.get(stored.id)
        if position is None or not position.is_open:
            raise DomainError(f"the position is {stored.status}", code="POSITION_NOT_OPEN")
        return position, desk


def checked_pair(pair: str) -> str:
    """A pair as bots name theirs: ``BASE/QUOTE``, at most 32 characters of plain text."""
    text = checked_text(pair, "pair", max_chars=PAIR_MAX)
    base, slash, quote = text.partition("/")
    if text != text.strip().upper() or not (slash and base and quote) or "/" in quote:
        raise DomainError("must look like 'BTC/USDT'", code="INVALID_PAIR", field="pair")
    return text


def _size(price: Decimal, quote_amount, amount) -> tuple[Decimal, Decimal]:
    """(units, quote) of a buy of ``quote_amount`` or of ``amount`` units at ``price``."""
    if quote_amount is not None:
        quote = parse_number(quote_amount, "quote_amount", QUOTE)
        return quote / price, quote
    units = parse_number(amount, "amount", AMOUNT)
    return units, units * price


def _request_of(order: Order, position: Position) -> OrderRequest:
    return OrderRequest(order.client_order_id, order.pair, order.side, order.type,
                        order.remaining, order.price, position.id.hex)


"""What a paper runner needs from the log when it (re)starts, read in one pass over the
order events instead of loading every order ever placed: which orders each deal placed, and
what the fills did to each paper account's balances on each pair.

The events stay the truth: this only *locates* orders (their aggregates are then loaded)
and sums fills exactly as the venue booked them. A runner reads the log once and then keeps
the index current with what it appends itself (:meth:`PaperLog.observe`): opening a market
for another account later costs nothing, where reading a long log again took seconds with
every bot waiting.

It keeps what the book keeps (projections/paper_book.py), no more: an order while it is
open or its deal is open. A server runs for months and its bots place millions of orders;
one that is final and whose deal finished is never asked about again (only open deals' orders
are listed, and a final order takes no fill: ``Order._check``), so it is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot
from domain.money import ZERO
from domain.orders import Order, OrderSide
from domain.recording import topic_of


@dataclass
class RestartBook:
    """What a paper runner restores at start, as a projection keeps it
    (projections/paper_book.py) instead of a scan of the log."""

    bots: list[UUID]  # running, or holding an open deal (a superset does no harm)
    # every order of an open deal and every open order, in placement order:
    # (order id, deal id, account id, pair, side, open)
    orders: list[tuple[UUID, UUID | None, str, str, str, bool]]
    fills: dict[tuple[str, str], tuple[Decimal, Decimal]]  # (account, pair) -> quote, base
    assets: dict[str, dict[str, Decimal]]  # account -> asset -> what fills did
    deposits: dict[str, dict[str, Decimal]]  # account -> asset -> deposits less withdrawals
    position: int = 0  # the log's position the book holds everything up to


class _Placed(NamedTuple):
    """(A tuple: a start makes one for each of ~50,000 orders of the book; a frozen
    dataclass's ``__init__`` cost four times as much.)"""

    deal_id: UUID | None
    account_id: str
    pair: str
    side: OrderSide


_SIDES = {side.value: side for side in OrderSide}
_new_tuple = tuple.__new__


# What ends an order whatever its fills (a fill that completes it ends it too)
_FINAL = (Order.Lost, Order.Cancelled, Order.Rejected, Order.Expired)
_TOPICS = [topic_of(event) for event in (Order.Submitted, Order.Filled, Order.TradeObserved,
                                         *_FINAL, Bot.DealFinished)]


class PaperLog:
    def __init__(self, trading: Trading | None, book: RestartBook | None = None):
        """Read from the log (``trading``), or taken from a ``book`` kept by a projection:
        it holds the orders that can still be filled or listed by an open deal, which is
        all a runner asks about."""
        self._placed: dict[UUID, _Placed] = {}
        self._by_deal: dict[UUID, list[UUID]] = {}
        self._fills: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._assets: dict[str, dict[str, Decimal]] = {}  # account -> asset -> change
        self._final: set[UUID] = set()  # final orders of open deals (no need to load)
        # (amount, filled so far) of the open orders placed since; a book's are ended by
        # their final event only (it does not say their amounts)
        self._filling: dict[UUID, tuple[Decimal, Decimal]] = {}
        if book is not None or trading is None:
            self._restore(book)
            return
        self.observe(trading.mapper.to_domain_event(notification)
                     for notification in read_log(trading, _TOPICS))

    def _restore(self, book: RestartBook | None) -> None:
        if book is None:
            return
        self._final = set()
        placed, final, by_deal = self._placed, self._final, self._by_deal
        for order_id, deal_id, account_id, pair, side, is_open in book.orders:
            placed[order_id] = _Placed(deal_id, account_id, pair,
                                       _SIDES.get(side) or OrderSide(side))
            if not is_open:
                final.add(order_id)
            if deal_id is not None:
                by_deal.setdefault(deal_id, []).append(order_id)
        self._fills = dict(book.fills)
        self._assets = {account: dict(assets) for account, assets in book.assets.items()}

    def observe(self, events: Iterable[Any]) -> None:
        """Take in events appended since (others than order placements, fills, ends and
        deals finishing pass): the runner keeps its index current instead of reading the
        log again. Each kind of event is told apart once (``_handler_of``), not by a chain
        of ``isinstance`` for each of a heavy candle's tens of thousands."""
        handlers = _HANDLERS
        for event in events:
            handle = handlers.get(type(event), _UNSEEN)
            if handle is _UNSEEN:
                handle = handlers[type(event)] = _handler_of(type(event))
            if handle is not None:
                handle(self, event)

    def _submitted(self, event: Order.Submitted) -> None:
        # (each id read once: a UUID's hash is Python code; the tuple made by tuple's own
        # __new__, not the named tuple's Python one: a heavy candle places ~12,000 orders)
        order_id, deal_id = event.originator_id, event.deal_id
        self._placed[order_id] = _new_tuple(_Placed, (
            deal_id, event.exchange_account_id, event.pair, event.side))
        self._filling[order_id] = (event.amount, ZERO)
        if deal_id is not None:
            self._by_deal.setdefault(deal_id, []).append(order_id)

    def _filled(self, event: Order.Filled | Order.TradeObserved) -> None:
        order_id = event.originator_id
        placed = self._placed.get(order_id)
        if placed is None:
            return  # forgotten (or placed before the book began): as the book, nothing
        if isinstance(event, Order.Filled):  # (a live venue's trades move no paper balance)
            self._book_fill(placed, event)
        filling = self._filling.get(order_id)
        if filling is not None:
            amount, filled = filling[0], filling[1] + event.amount
            self._filling[order_id] = (amount, filled)
            if filled == amount:  # summed as Order.Filled.apply sums it
                self._ended(order_id)

    def _ended(self, order_id: UUID) -> None:
        """The order is final: forgotten unless its deal is open (it is listed with it)."""
        placed = self._placed.get(order_id)
        if placed is None:
            return
        self._filling.pop(order_id, None)
        if placed.deal_id is not None and placed.deal_id in self._by_deal:
            self._final.add(order_id)
        else:
            del self._placed[order_id]

    def _deal_finished(self, deal_id: UUID) -> None:
        """Its orders are listed no more; the final ones are forgotten, an open one (a
        live cancel not answered yet) is kept until it ends."""
        final, placed = self._final, self._placed
        for order_id in self._by_deal.pop(deal_id, ()):
            if order_id in final:  # (a deal's orders are final by then, nearly always)
                final.remove(order_id)
                del placed[order_id]

    def _book_fill(self, placed: _Placed, event: Order.Filled) -> None:
        key = (placed.account_id, placed.pair)
        quote, base = self._fills.get(key, (ZERO, ZERO))
        notional = event.price * event.amount
        if placed.side is OrderSide.BUY:
            quote, base = quote - notional - event.fee, base + event.amount
        else:
            quote, base = quote + notional - event.fee, base - event.amount
        self._fills[key] = (quote, base)
        base_asset, _, quote_asset = placed.pair.partition("/")
        assets = self._assets.setdefault(placed.account_id, {})
        sign = 1 if placed.side is OrderSide.BUY else -1
        assets[quote_asset] = assets.get(quote_asset, ZERO) - sign * notional - event.fee
        assets[base_asset] = assets.get(base_asset, ZERO) + sign * event.amount

    def orders_of(self, deal_id: UUID) -> list[UUID]:
        """Every order the deal placed, in the order it placed them."""
        return list(self._by_deal.get(deal_id, ()))

    def open_orders_of(self, deal_id: UUID) -> list[UUID]:
        """``orders_of`` less the ones known to be final (a book knows; a scan does not)."""
        return [o for o in self._by_deal.get(deal_id, ()) if o not in self._final]

    def asset_fills(self, account_id: str) -> dict[str, Decimal]:
        """What the fills of the account's orders on every pair did to each asset."""
        return dict(self._assets.get(account_id, {}))

    def remembered(self) -> int:
        """How many orders this index holds in memory (open, or of an open deal)."""
        return len(self._placed)

    def fills(self, account_id: str, pair: str) -> tuple[Decimal, Decimal]:
        """(quote, base) the fills of the account's orders on ``pair`` added up to."""
        return self._fills.get((account_id, pair), (ZERO, ZERO))


def _ended_event(log: PaperLog, event: Any) -> None:
    log._ended(event.originator_id)


def _deal_finished_event(log: PaperLog, event: Any) -> None:
    log._deal_finished(event.deal_id)


def _handler_of(kind: type) -> Any:
    """What ``observe`` does with an event of ``kind`` (None: it passes), as the
    ``isinstance`` tests in this order decide it."""
    if issubclass(kind, Order.Submitted):
        return PaperLog._submitted
    if issubclass(kind, Order.Filled | Order.TradeObserved):
        return PaperLog._filled
    if issubclass(kind, _FINAL):
        return _ended_event
    if issubclass(kind, Bot.DealFinished):
        return _deal_finished_event
    return None


_UNSEEN = object()
_HANDLERS: dict[type, Any] = {}  # by kind of event: its handler (_handler_of), or None

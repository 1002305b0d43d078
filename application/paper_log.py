"""What a paper runner needs from the log when it (re)starts, read in one pass over the
order events instead of loading every order ever placed: which orders each deal placed, and
what the fills did to each paper account's balances on each pair.

The events stay the truth: this only *locates* orders (their aggregates are then loaded)
and sums fills exactly as the venue booked them. A runner reads the log once and then keeps
the index current with what it appends itself (:meth:`PaperLog.observe`): opening a market
for another account later costs nothing, where reading a long log again took seconds with
every bot waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
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


@dataclass(frozen=True)
class _Placed:
    deal_id: UUID | None
    account_id: str
    pair: str
    side: OrderSide


class PaperLog:
    def __init__(self, trading: Trading | None, book: RestartBook | None = None):
        """Read from the log (``trading``), or taken from a ``book`` kept by a projection:
        it holds the orders that can still be filled or listed by an open deal, which is
        all a runner asks about."""
        self._placed: dict[UUID, _Placed] = {}
        self._by_deal: dict[UUID, list[UUID]] = {}
        self._fills: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._assets: dict[str, dict[str, Decimal]] = {}  # account -> asset -> change
        self._final: set[UUID] = set()  # orders a book said were final (no need to load)
        if book is not None or trading is None:
            self._restore(book)
            return
        topics = [topic_of(Order.Submitted), topic_of(Order.Filled)]
        self.observe(trading.mapper.to_domain_event(notification)
                     for notification in read_log(trading, topics))

    def _restore(self, book: RestartBook | None) -> None:
        if book is None:
            return
        self._final = set()
        for order_id, deal_id, account_id, pair, side, is_open in book.orders:
            self._placed[order_id] = _Placed(deal_id, account_id, pair, OrderSide(side))
            if not is_open:
                self._final.add(order_id)
            if deal_id is not None:
                self._by_deal.setdefault(deal_id, []).append(order_id)
        self._fills = dict(book.fills)
        self._assets = {account: dict(assets) for account, assets in book.assets.items()}

    def observe(self, events: Iterable[Any]) -> None:
        """Take in events appended since (others than order placements and fills pass):
        the runner keeps its index current instead of reading the log again."""
        for event in events:
            if isinstance(event, Order.Submitted):
                self._submitted(event)
            elif isinstance(event, Order.Filled):
                self._filled(event)

    def _submitted(self, event: Order.Submitted) -> None:
        self._placed[event.originator_id] = _Placed(
            event.deal_id, event.exchange_account_id, event.pair, event.side)
        if event.deal_id is not None:
            self._by_deal.setdefault(event.deal_id, []).append(event.originator_id)

    def _filled(self, event: Order.Filled) -> None:
        placed = self._placed[event.originator_id]
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

    def fills(self, account_id: str, pair: str) -> tuple[Decimal, Decimal]:
        """(quote, base) the fills of the account's orders on ``pair`` added up to."""
        return self._fills.get((account_id, pair), (ZERO, ZERO))

"""One paper (or live) market of :class:`~application.paper_trading.PaperTrading`: an
account's venue on one pair and the engines trading on it, watched together by the venue's
walk of a candle; and the band of prices a candle must reach for it to act."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from application.engine import DcaEngine
from application.level_index import Band
from application.live_venue import LiveVenue
from application.position_desk import PositionDesk
from domain.accounts import ExchangeAccount
from domain.deals import Deal, DealStatus
from domain.ports import ExchangeOrder, OrderRequest, SimulatedVenue

log = logging.getLogger("tradetape.paper")
VenueFactory = Callable[[str, Decimal, Decimal], "PaperVenue"]
# A live account's venue on one pair (application/live_venue.py), built by the composition
# root from the account (its exchange, sandbox flag and keys).
LiveVenueFactory = Callable[[ExchangeAccount, str], LiveVenue]


class PaperVenue(SimulatedVenue):
    """The paper exchange as this module needs it (see adapters/exchanges/paper.py)."""

    def restore_resting(self, request: OrderRequest, exchange_order_id: str) -> None: ...

    def restore_position(self, position: str, units: Decimal) -> None: ...

    def join_wallet(self, other: PaperVenue) -> None: ...

    def add_balance(self, asset: str, amount: Decimal) -> None: ...


@dataclass
class Market:
    """One paper venue (an account on one pair) and the bots trading on it.

    An exception from one bot's engine fails that bot alone (:meth:`fail`): its engine
    leaves the market with whatever it had not saved, and every other bot trades on."""

    venue: PaperVenue
    order: int = 0  # markets are stepped in the order they were opened
    engines: dict[UUID, DcaEngine] = field(default_factory=dict)
    failures: dict[UUID, Exception] = field(default_factory=dict)  # in the step under way
    # live: bots whose restart reconciliation could not reach the exchange, with the safety
    # orders their deal had placed; finished at the first step that reaches it
    unreconciled: dict[UUID, frozenset[int]] = field(default_factory=dict)
    # the users' own positions on this market and their exits (application/positions.py)
    desk: PositionDesk | None = None

    @property
    def busy(self) -> bool:
        return bool(self.engines) or (self.desk is not None and self.desk.busy)

    def fail(self, bot_id: UUID, error: Exception) -> None:
        self.engines.pop(bot_id, None)
        self.failures.setdefault(bot_id, error)

    def take_failures(self) -> list[tuple[UUID, Exception]]:
        failed, self.failures = list(self.failures.items()), {}
        return failed

    # PriceWatcher for the venue's walk: every engine watches the same prices. One pass,
    # no list: asked at every price a walk visits and for every band measured (a quiet
    # candle after a busy one measures a thousand markets' at 10,000 bots). Of equal
    # levels the first is kept, as max() and min() keep it: a level becomes a fill's price.
    def trigger_levels(self) -> tuple[Decimal | None, Decimal | None]:
        below, above, _, _ = self.watch_levels()
        return below, above

    def watch_levels(
        self,
    ) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
        """``(trigger_levels, low_watch, high_watch)`` in one pass over the engines (the
        venue's walk asks for them at every price it stops at: 10 engines a market)."""
        highest_below = lowest_above = lowest_high = None
        for engine in self.engines.values():
            below, above, _, high = engine.watch_levels()
            if below is not None and (highest_below is None or below > highest_below):
                highest_below = below
            if above is not None and (lowest_above is None or above < lowest_above):
                lowest_above = above
            if high is not None and (lowest_high is None or high < lowest_high):
                lowest_high = high
        desk = self.desk
        if desk is None or not desk.busy:
            return highest_below, lowest_above, None, lowest_high
        below, above = desk.trigger_levels()  # (after the engines: of equal levels theirs are kept)
        if below is not None and (highest_below is None or below > highest_below):
            highest_below = below
        if above is not None and (lowest_above is None or above < lowest_above):
            lowest_above = above
        high = desk.high_watch()
        if high is not None and (lowest_high is None or high < lowest_high):
            lowest_high = high
        return highest_below, lowest_above, desk.low_watch(), lowest_high

    def high_watch(self) -> Decimal | None:
        return self.watch_levels()[3]

    def low_watch(self) -> Decimal | None:
        """A buy trailing stop's lowest (only the positions' desk follows lows)."""
        return self.desk.low_watch() if self.desk is not None and self.desk.busy else None

    def on_price(self, price: Decimal) -> None:
        for bot_id, engine in list(self.engines.items()):
            try:
                engine.on_price(price)
            except Exception as error:  # one bot's state, whatever it is, stops that bot
                self.fail(bot_id, error)
        if self.desk is not None and self.desk.busy:
            self._desk_safely(self.desk.on_price, price)

    def on_order_update(self, update: ExchangeOrder) -> None:
        for bot_id, engine in self.engines.items():
            if update.client_order_id in engine.orders:
                try:
                    engine.on_order_update(update)
                except Exception as error:
                    self.fail(bot_id, error)
                return
        if self.desk is not None and update.client_order_id in self.desk.orders:
            self._desk_safely(self.desk.on_order_update, update)

    @staticmethod
    def _desk_safely(command: Callable[[Any], None], argument: Any) -> None:
        """A fault of the positions' desk stops no bot: one log line, and the walk goes
        on (what the desk recorded until then is saved)."""
        try:
            command(argument)
        except Exception as error:
            log.error("positions: the desk failed at a step: %s", error_reason(error))


def market_band(market: Market) -> Band:
    """Where a candle must reach for ``market`` to act: its venue's resting orders and its
    watchers' levels (the backtest's skip), or every candle while a bot waits for a close
    to open a deal, a live venue (asked at every step) or a ladder to finish."""
    if isinstance(market.venue, LiveVenue) or market.unreconciled:
        return Band(None, None, True)
    below, above = market.venue.trigger_band(market)
    every_close = False
    for engine in market.engines.values():  # (a bot with a deal waits for no close)
        if engine.deal is None and engine.wants_next_close:
            every_close = True
            break
    return Band(below, above, every_close)


def error_reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, ArithmeticError) and text.startswith("[<class"):
        # decimal's signals say only their class: say what it means for the bot
        text = "a calculation went out of range: check the configuration's numbers"
    return f"{type(error).__name__}: {text}"[:300]


def closed_deals(changes) -> list[Deal]:
    """The deals among a step's changes that it closed."""
    return [a for a in changes if isinstance(a, Deal) and a.status is DealStatus.CLOSED]


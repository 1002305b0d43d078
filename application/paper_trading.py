"""Paper trading in real time: every running bot, on its account's paper venue, fed one
closed candle at a time. The same DcaEngine as backtests; only the feed's pace differs.

State lives in events only: on start (and after a restart) each running bot's engine is
rebuilt from its Bot, open Deal and open Orders, and its paper venue from the account's
deposits and fills, so a restarted bot carries on without placing any order twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import UUID

from application.engine import DcaEngine
from application.level_index import Band, LevelIndex
from application.live_venue import LiveVenue
from application.paper_deals import AlsoSaved, DealsNow
from application.paper_log import PaperLog, RestartBook
from application.position_desk import PositionDesk
from application.replay import read_log
from application.risk_limits import RiskLimits
from application.step_lock import StepLock
from application.trading import Trading
from domain.accounts import AccountKind, ExchangeAccount
from domain.bots import Bot, BotStatus
from domain.deals import CloseReason, Deal, DealStatus
from domain.errors import (
    ConcurrencyConflictError,
    DomainError,
    InvalidTransitionError,
    NotFoundError,
)
from domain.money import ZERO
from domain.orders import Order, OrderStatus
from domain.ports import Balance, ExchangeOrder, IdSource, OrderRequest, SimulatedVenue
from domain.recording import ENGINE, SYSTEM, Cause, topic_of
from domain.risk import Exposure, UserRisk

log = logging.getLogger("tradetape.paper")
# A candle refused by a race is stepped again this many times at most, then skipped
RESTEPS = 3
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
class _Market:
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
    def watchers(self) -> list:
        desk = self.desk
        engines = list(self.engines.values())
        return [*engines, desk] if desk is not None and desk.busy else engines

    @property
    def busy(self) -> bool:
        return bool(self.engines) or (self.desk is not None and self.desk.busy)

    def fail(self, bot_id: UUID, error: Exception) -> None:
        self.engines.pop(bot_id, None)
        self.failures.setdefault(bot_id, error)

    def take_failures(self) -> list[tuple[UUID, Exception]]:
        failed, self.failures = list(self.failures.items()), {}
        return failed

    # PriceWatcher for the venue's walk: every engine watches the same prices.
    def trigger_levels(self) -> tuple[Decimal | None, Decimal | None]:
        belows, aboves = [], []
        for engine in self.watchers:
            below, above = engine.trigger_levels()
            belows += [below] if below is not None else []
            aboves += [above] if above is not None else []
        return max(belows, default=None), min(aboves, default=None)

    def high_watch(self) -> Decimal | None:
        highs = [h for e in self.watchers if (h := e.high_watch()) is not None]
        return min(highs, default=None)

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
            log.error("positions: the desk failed at a step: %s", _reason(error))


@dataclass
class _Turn:
    """A candle's attempts (``PaperTrading.on_candle``). A market is stepped once per
    candle: again only when the log does not hold its step (its append was refused and the
    market rebuilt from the log: a new object), never when its step is stored (by a flush
    before the refused one) or changed nothing (not rebuilt)."""

    stepped: dict[tuple[str, str], _Market] = field(default_factory=dict)
    stored: set[tuple[str, str]] = field(default_factory=set)
    refused: ConcurrencyConflictError | None = None  # in the attempt under way

    def settled(self, key: tuple[str, str], market: _Market) -> bool:
        return key in self.stored or self.stepped.get(key) is market


class PaperTrading(DealsNow):
    """Hold ``lock`` while changing a bot this runner trades (start, pause, stop): steps
    take it too, so a command never lands between an engine's decision and its save.

    A step costs what it changes: the engines stay in memory between candles; a candle
    walks only the markets it reaches (``LevelIndex``); what it changes is appended in one
    transaction (``_append``); a bot is loaded again only when the log shows another writer
    changed it since (a command, the risk limits, another process)."""

    def __init__(self, trading: Trading, ids: IdSource, venue_factory: VenueFactory,
                 live_venues: LiveVenueFactory | None = None, risk: RiskLimits | None = None):
        """``risk``: the users' risk limits, asked by every engine before a buy and kept
        current with the deals that close here (None: no limits)."""
        self.trading, self.ids, self.venue_factory = trading, ids, venue_factory
        self.live_venues = live_venues
        self.lock = StepLock()
        self.risk = risk
        if risk is not None:
            risk.lock = self.lock
            risk.add_exposure(self.exposure_of)
        self._markets: dict[tuple[str, str], _Market] = {}
        self._log: PaperLog | None = None  # read once, then kept current by _append
        # Where a start finds what a scan of the log would give (projections/paper_book.py,
        # wired by the composition root); None: the scan.
        self.restart_book: Callable[[], RestartBook] | None = None
        # while ``resume`` runs: the accounts it loaded, and the book's deposits by account
        self._accounts: dict[UUID, ExchangeAccount] = {}
        self._given: dict[str, dict[str, Decimal]] | None = None
        self._last_close: dict[str, Decimal] = {}  # by pair: a new venue's first price
        self._opened = 0  # markets opened so far (their order)
        self._levels: dict[str, LevelIndex] = {}  # by pair: the bands of its busy markets
        self._stale: set[tuple[str, str]] = set()  # markets whose band must be measured
        self._entries_seen = -1  # the lock's entries at the end of the last step
        # Aggregates a step changed, saved together at its end (``_flush``)
        self._pending: list = []
        self._pending_bots: set[UUID] = set()
        self._turn: _Turn | None = None  # the candle being stepped (``on_candle``)
        self.appended = 0  # events appended so far
        # The log's position up to which other writers' changes to bots were looked for
        self._seen = trading.recorder.max_notification_id() or 0
        # The trading switch as last loaded (None: to load). Loading it before every candle
        # was a query each (a fifth of a step's time at 1,000 bots on a loaded machine);
        # the log scan above shows whenever anyone changed it since.
        self._switch_halted: bool | None = None

    def _index(self) -> PaperLog:
        """The log's orders and fills: read at the first need, then kept current (this runner
        is the one that places and fills paper orders)."""
        if self._log is None:
            self._log = PaperLog(self.trading)
        return self._log

    def _append(self, aggregates, bot_ids=()) -> int:
        """The one way the engines' changes reach the log: save ``aggregates`` (what the
        steps of ``bot_ids`` changed) in one transaction, and keep the index current with
        it. Nothing changed, nothing written (no empty transaction). An engine worker fences
        its appends with the leases of ``bot_ids`` (``application/leased_paper.py``)."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if not events:
            return 0
        positions = self.trading.append_positions(events)
        appended = len(positions)
        self.appended += appended
        if positions and positions[0] == self._seen + 1 and \
                positions[-1] - positions[0] == appended - 1:
            # Right after the last position looked at, in one run: no one else wrote in
            # between, and the next look at the log need not read this runner's own events
            # back (a heavy candle's thousands, and every followed bot walked for them).
            self._seen = positions[-1]
        if self._log is not None:
            self._log.observe(events)
        return appended

    def _stage(self, aggregates, bot_ids=()) -> None:
        """Keep a step's changes for the candle's one transaction (``_flush``)."""
        if aggregates:
            self._pending.extend(aggregates)
            self._pending_bots.update(bot_ids)

    def _flush(self) -> int:
        """Append what the steps staged, in the order they decided it. Should another
        writer have saved one of those bots first, nothing is stored, and the markets of
        the staged bots are rebuilt from the log (as at a restart) before the conflict is
        raised: no engine keeps decisions the log does not hold (``on_candle`` then steps
        its candle again on those markets)."""
        aggregates, bot_ids = self._pending, self._pending_bots
        if not aggregates:
            return 0
        self._pending, self._pending_bots = [], set()
        turn = self._turn
        try:
            appended = self._append(aggregates, bot_ids)
        except ConcurrencyConflictError as error:
            self._rebuild_markets(bot_ids)
            if turn is not None:  # (a step's failure line swallows it: noted here)
                turn.refused = error
            raise
        if turn is not None:
            turn.stored.update(k for k, m in turn.stepped.items() if self._markets.get(k) is m)
        return appended

    def _save_now(self, aggregates, bot_ids=()) -> int:
        """Save at once (outside a candle's batch), after anything staged before."""
        self._stage(aggregates, bot_ids)
        return self._flush()

    def _rebuild_markets(self, bot_ids) -> None:
        """Forget the markets trading ``bot_ids`` and follow their bots again from the log."""
        for key, market in list(self._markets.items()):
            if bot_ids & market.engines.keys():
                del self._markets[key]
                self._drop_band(key)
                for other in list(market.engines):
                    bot = self.trading.get_bot(other)
                    if bot.status is BotStatus.RUNNING or bot.open_deal_id is not None:
                        self.follow(other)  # (as ``resume`` would)

    @property
    def bot_ids(self) -> set[UUID]:
        return {bot_id for m in self._markets.values() for bot_id in m.engines}

    def resume(self) -> list[UUID]:
        """Rebuild an engine for every running bot (and any bot with an open deal), in the
        order the bots were created. The bots, their open deals, those deals' orders and the
        accounts are loaded in a few queries (``Trading.load_many``); with a restart book
        (``restart_book``: a projection's, see projections/paper_book.py) the bots to look
        at, the deals' orders and the venues' balances come from it instead of a scan."""
        with self.lock:
            if self.risk is not None:
                self.risk.resume()
            book = self.restart_book() if self.restart_book is not None else None
            followed = self.bot_ids
            candidates = book.bots if book is not None else _bot_ids(self.trading)
            bots = self.trading.load_many([b for b in candidates if b not in followed], Bot)
            active = [bots[b] for b in candidates if b in bots and (
                bots[b].status is BotStatus.RUNNING or bots[b].open_deal_id is not None)]

            def failed(bot: Bot, error: Exception) -> None:
                if not isinstance(error, DomainError):
                    raise error
                cause = self.trading.cause(SYSTEM, f"resume:{bot.id}")  # e.g. its live
                self._record_failure(bot.id, cause, error)  # account may not trade

            self._adopt_many(active, book, failed)
            return sorted(self.bot_ids)

    def follow_many(self, bot_ids: Iterable[UUID],
                    loaded: dict[UUID, Bot] | None = None) -> dict[UUID, Exception]:
        """``follow`` each of ``bot_ids``, loaded together as ``resume`` loads them (an
        engine worker's first share at start: thousands of bots; those in ``loaded`` were
        just loaded by the caller: taken as they are); when the orders and fills must be
        read again, they and the balances come from the restart book, if any, instead of a
        scan of the log. Returns the bots that could not be followed, with why (the others
        trade)."""
        with self.lock:
            followed = self.bot_ids
            wanted = [b for b in dict.fromkeys(bot_ids) if b not in followed]
            if not wanted:
                return {}
            # The orders and fills must be read again (at start, or another worker wrote
            # some for these bots): from the book, as of the log's head, not from a scan.
            fresh = self._log is None and self.restart_book is not None
            book = self.restart_book() if fresh else None
            given = {b: loaded[b] for b in wanted if loaded and b in loaded}
            bots = {**given, **self.trading.load_many(
                [b for b in wanted if b not in given], Bot)}
            problems: dict[UUID, Exception] = {
                b: NotFoundError(f"no bot {b}") for b in wanted if b not in bots}
            self._adopt_many([bots[b] for b in wanted if b in bots], book,
                             lambda bot, error: problems.__setitem__(bot.id, error))
            return problems

    def _adopt_many(self, bots: list[Bot], book: RestartBook | None,
                    failed: Callable[[Bot, Exception], None]) -> None:
        """``_adopt`` each of ``bots``, their accounts, open deals and those deals' orders
        loaded in a few queries first; ``failed`` hears of a bot that could not be."""
        if book is not None:
            self._log = PaperLog(None, book)
            self._given = dict(book.deposits)
        self._accounts = self.trading.load_many(
            _account_ids(bot.exchange_account_id for bot in bots), ExchangeAccount)
        try:
            deals = self.trading.load_many(
                [bot.open_deal_id for bot in bots if bot.open_deal_id is not None], Deal)
            index = self._index()
            orders = self.trading.load_many(
                [order_id for deal_id in deals for order_id in index.open_orders_of(deal_id)],
                Order)
            for bot in bots:
                try:
                    self._adopt(bot, deals.get(bot.open_deal_id), orders)
                except Exception as error:
                    failed(bot, error)
        finally:
            self._accounts, self._given = {}, None

    def follow(self, bot_id: UUID) -> None:
        """Trade ``bot_id`` from now on (after it was started)."""
        with self.lock:
            if any(bot_id in market.engines for market in self._markets.values()):
                return
            self._adopt(self.trading.get_bot(bot_id))

    def _adopt(self, bot: Bot, deal: Deal | None = None,
               loaded: dict[UUID, Order] | None = None) -> None:
        """An engine for ``bot`` on its market; its open deal and that deal's orders as
        given (``resume`` loads them for every bot at once), else loaded here."""
        market = self._market(bot.exchange_account_id, bot.config.pair)
        engine = DcaEngine(bot, market.venue, self.ids,
                           risk=None if self.risk is None else self.risk.check)
        if isinstance(market.venue, LiveVenue):
            self._follow_live(market, engine)
            return
        if bot.open_deal_id is not None:
            engine.deal = deal if deal is not None else self.trading.get_deal(bot.open_deal_id)
            # The units the deal holds, summed as the deal summed them: its exit sells them.
            market.venue.restore_position(engine.deal.id.hex, engine.deal.units)
            for order_id in self._index().orders_of(bot.open_deal_id):
                if loaded is not None and order_id not in loaded:
                    continue  # final (the book knew), so not loaded
                order = (loaded[order_id] if loaded is not None
                         else self.trading.load(order_id, Order))
                if not order.is_open:
                    continue
                engine.orders[order.client_order_id] = order
                if order.exchange_order_id is not None:  # resting on the venue
                    market.venue.restore_resting(
                        OrderRequest(order.client_order_id, order.pair, order.side,
                                     order.type, order.remaining, order.price,
                                     order.deal_id.hex if order.deal_id else None),
                        order.exchange_order_id)
        market.engines[bot.id] = engine
        self._stale.add((bot.exchange_account_id, bot.config.pair))

    def _follow_live(self, market: _Market, engine: DcaEngine) -> None:
        """Reconciliation of one bot on a live exchange, when it is (re)followed: every
        order the log believes open is asked about (fills made while we were down are
        recorded at the exchange's times; one the exchange does not know is Lost), and a
        ladder the process stopped before placing is placed."""
        bot = engine.bot
        market.engines[bot.id] = engine
        self._stale.add((bot.exchange_account_id, bot.config.pair))
        if bot.open_deal_id is None:
            return
        engine.deal = self.trading.get_deal(bot.open_deal_id)
        placed = set()
        for order_id in self._index().orders_of(bot.open_deal_id):
            order = self.trading.load(order_id, Order)
            placed.add(order.safety_order)
            if order.is_open:
                engine.restore_order(order)
                market.venue.restore_resting(
                    OrderRequest(order.client_order_id, order.pair, order.side, order.type,
                                 order.remaining, order.price, order.deal_id.hex),
                    order.exchange_order_id)
        engine.begin_step(self.trading.cause(SYSTEM, f"reconcile:{bot.id}"))
        try:
            for update in market.venue.poll():
                market.on_order_update(update)
            if engine.deal is not None:
                engine.resume_ladder(frozenset(placed))
        except DomainError as error:  # the exchange is away: the first step that reaches
            log.warning("bot %s: reconciliation deferred: %s", bot.id, error)  # it finishes
            market.unreconciled[bot.id] = frozenset(placed)
        finally:
            self._save_now(engine.take_changes(), {bot.id})

    def on_candle(self, pair: str, ts_ms: int, o: Decimal, h: Decimal, low: Decimal,
                  c: Decimal, at) -> int:
        """A candle of ``pair`` closed: walk it on every venue trading the pair whose levels
        it reaches (the others only take its close as their price), and append what it
        changed in one transaction. Returns the number of events appended.

        Should another writer have saved one of its bots first (billing pausing it, a
        command, a signal), the append is refused whole and those markets rebuilt from the
        log; the candle is then stepped again on them, with the same cause, so the bots
        nobody raced with still get its fills and the raced bot's new state is respected
        (the stored result is what a first step after the race gives). Refused
        ``1 + RESTEPS`` times, it is skipped on those markets: one error line,
        ``CANDLE_SKIPPED``."""
        with self.lock:
            before, turn = self.appended, _Turn()
            self._turn = turn
            try:
                for attempt in range(1 + RESTEPS):
                    if attempt:  # (a race is no fault: not a warning)
                        log.info("candle %s of %s refused (%s: %s): stepped again from the "
                                 "log", ts_ms, pair, turn.refused.code, turn.refused)
                    turn.refused = None
                    try:
                        self._step_candle(pair, ts_ms, (o, h, low, c), at, turn)
                    except ConcurrencyConflictError as error:
                        turn.refused = turn.refused or error
                    if turn.refused is None:
                        return self.appended - before
                log.error("candle %s of %s skipped (CANDLE_SKIPPED): refused %d times, the "
                          "last %s: %s; its bots go on from the log at the next candle",
                          ts_ms, pair, 1 + RESTEPS, turn.refused.code, turn.refused)
                return self.appended - before
            finally:
                self._turn = None
                self._entries_seen = self.lock.entries

    def _step_candle(self, pair: str, ts_ms: int,
                     candle: tuple[Decimal, Decimal, Decimal, Decimal], at, turn: _Turn) -> None:
        """One attempt at a candle: the markets it reaches that this candle has not
        settled yet (``_Turn``) are stepped, and what they changed is appended."""
        self._see_other_writers()  # (notes a change of the trading switch too)
        if self._halted():
            return  # emergency stop: no deal opens, no order is placed
        cause = Cause(at, ENGINE, f"paper:{pair}:{ts_ms}")
        if self.risk is not None:
            self._lift_daily_pauses(cause)
        self._last_close[pair] = c = candle[3]
        reached = self._reached(pair, candle[2], candle[1])
        if self.risk is not None:
            self.risk.prefetch(engine.bot.owner_id for key in reached
                               if (market := self._markets.get(key)) is not None
                               for engine in market.engines.values())
        for key, market in list(self._markets.items()):
            if key[1] != pair:
                continue
            if key in reached and market.busy and not turn.settled(key, market):
                turn.stepped[key] = market
                self._stale.add(key)
                self._step(market, cause, candle)
            else:
                market.venue.price = c  # what a walk would have left it at
        self._flush()

    def _reached(self, pair: str, low: Decimal, high: Decimal) -> set[tuple[str, str]]:
        """The markets of ``pair`` a candle from ``low`` to ``high`` reaches. Their bands are
        measured again where a step or anyone holding the lock since may have moved them."""
        if self.lock.entries != self._entries_seen + 1:  # someone else held the lock
            self._stale.update(self._markets)
        index = self._levels.setdefault(pair, LevelIndex())
        for key in [k for k in self._stale if k[1] == pair]:
            self._stale.discard(key)
            market = self._markets.get(key)
            if market is None or not market.busy:
                index.drop(key)
            else:
                index.put(key, market.order, _band(market))
        return set(index.reached(low, high))

    def _drop_band(self, key: tuple[str, str]) -> None:
        self._stale.discard(key)
        index = self._levels.get(key[1])
        if index is not None:
            index.drop(key)

    def _see_other_writers(self) -> None:
        """Load again the bots another writer changed since the last look (a command from
        the API, the risk limits' lift, another process): the log's Bot events past the
        last position seen, of a followed bot, at a version beyond the engine's copy. This
        runner's own appends are never beyond it."""
        head = self.trading.recorder.max_notification_id() or 0
        seen, self._seen = self._seen, head
        if head <= seen:
            return
        engines: dict[UUID, tuple[tuple[str, str], DcaEngine]] | None = None
        topics = _BOT_TOPICS + _switch_topics()
        if self.risk is not None:
            topics += _RISK_TOPICS
        for notification in read_log(self.trading, topics, first=seen + 1, last=head):
            if notification.topic in _switch_topics():
                self._switch_halted = None  # stopped or resumed: load it again
                continue
            if self.risk is not None and notification.topic in _RISK_TOPICS:
                self.risk.forget(notification.originator_id)  # a limit set elsewhere
                continue
            if engines is None:
                engines = {bot_id: (key, engine) for key, market in self._markets.items()
                           for bot_id, engine in market.engines.items()}
            found = engines.get(notification.originator_id)
            if found is None or notification.originator_version <= found[1].bot.version:
                continue
            self._reload(*found)

    def _halted(self) -> bool:
        """The emergency stop, as the store has it (``_see_other_writers`` looked first)."""
        if self._switch_halted is None:
            self._switch_halted = self.trading.is_halted()
        return self._switch_halted

    def _reload(self, key: tuple[str, str], engine: DcaEngine) -> None:
        bot_id = engine.bot.id
        self._stale.add(key)
        market = self._markets.get(key)
        if market is None or market.engines.get(bot_id) is not engine:
            return  # (rebuilt by an earlier reload of this scan)
        try:
            bot = self.trading.get_bot(bot_id)
        except Exception as error:
            market.fail(bot_id, error)
            return
        if bot.open_deal_id != (engine.deal.id if engine.deal is not None else None):
            self._rebuild_markets({bot_id})  # its deal moved on elsewhere: from the log
            return
        engine.bot = bot  # pauses, stops and edits land here
        if engine.deal is None and bot.status is not BotStatus.RUNNING:
            del market.engines[bot_id]  # paused or stopped, nothing left open

    def _step(self, market: _Market, cause: Cause,
              candle: tuple[Decimal, Decimal, Decimal, Decimal]) -> None:
        """One candle on one venue, its changes staged for the candle's transaction. A bot
        whose engine raises is failed alone (its error recorded on it), the others'
        decisions are saved as if it had not been there."""
        c = candle[3]
        for bot_id, engine in list(market.engines.items()):
            try:
                engine.begin_step(cause)
            except Exception as error:
                market.fail(bot_id, error)
        walked = self._walk(market, candle, cause)
        if self.risk is not None:
            self._count_closed(market, cause)
        for bot_id, engine in list(market.engines.items()):
            try:
                if walked and bot_id in market.unreconciled:
                    engine.resume_ladder(market.unreconciled.pop(bot_id))
                if walked:
                    engine.on_close(c)
            except Exception as error:
                market.fail(bot_id, error)
                continue
            self._stage(engine.take_changes(), (bot_id,))
            if engine.deal is None and engine.bot.status is not BotStatus.RUNNING:
                del market.engines[bot_id]  # paused or stopped, nothing left open
        for bot_id, error in market.take_failures():
            self._record_failure(bot_id, cause, error)

    def _count_closed(self, market: _Market, cause: Cause) -> None:
        """The deals this candle closed count into their owners' day before any bot opens
        a new deal at its close: a daily loss limit they reach pauses the bots first
        (the runner's own copy of each bot it trades, wherever it trades it)."""
        closed = [deal for engine in market.engines.values() for deal in engine.closed_deals()
                  if self.risk.counts_losses(deal.owner_id)]
        if not closed:  # (then the step's events are saved as they always were)
            return
        for bot_id, engine in market.engines.items():
            self._stage(engine.take_changes(), (bot_id,))
        self._flush()
        paused = self.risk.count_closed(closed, cause, self._bot_of)
        self._save_now(paused, [a.id for a in paused if isinstance(a, Bot)])
        self._stale.update(self._markets)  # paused bots elsewhere open no deal at a close

    def _bot_of(self, bot_id: UUID) -> Bot:
        """The bot as this runner's engine holds it, else as the log has it."""
        engine = self._engine_of(bot_id)[1]
        return engine.bot if engine is not None else self.trading.get_bot(bot_id)

    def _lift_daily_pauses(self, cause: Cause) -> None:
        """The first step of a new day resumes the bots the daily loss limit paused."""
        for owner_id in self.risk.due(cause.at):
            for bot_id in self.risk.lift(owner_id, cause):
                self.follow(bot_id)

    def exposure_of(self, owner_id: str) -> Exposure:
        """The owner's open deals on this runner and the quote they commit (the risk
        limits' figures: from the engines' state, never a read model)."""
        deals, committed = 0, ZERO
        for market in self._markets.values():
            for engine in market.engines.values():
                if engine.bot.owner_id == owner_id and engine.deal is not None:
                    deals += 1
                    committed += engine.committed_quote()
        return Exposure(deals, committed)

    def _walk(self, market: _Market, candle: tuple[Decimal, Decimal, Decimal, Decimal],
              cause: Cause) -> bool:
        """Walk the candle on the venue; False when the venue itself failed (no one bot to
        blame: what the bots did until then is kept, and no deal opens at this close).
        What the positions' desk decided on the way is staged first."""
        desk = market.desk
        if desk is not None:
            desk.begin_step(cause)
        try:
            market.venue.walk_candle(*candle, market)
            walked = True
        except Exception as error:
            log.error("the paper venue failed on a candle: %s", _reason(error))
            walked = False
        if desk is not None:
            self._stage(desk.take_changes())
        return walked

    def _record_failure(self, bot_id: UUID, cause: Cause, error: Exception) -> int:
        """The bot goes to ERROR with the reason (resetting the error brings it back
        paused); one log line, no traceback: the reason is the bot's state, not a bug of
        the loop's."""
        reason = f"the engine failed on this bot's step: {_reason(error)}"
        log.error("bot %s failed at %s and was set to error: %s", bot_id,
                  cause.correlation_id, _reason(error))
        try:
            bot = self.trading.get_bot(bot_id)
            if bot.status not in (BotStatus.CREATED, BotStatus.RUNNING, BotStatus.PAUSED):
                return 0  # already failed (or stopped): said once is enough
            bot.fail(cause, reason)
            return self._save_now([bot], (bot_id,))
        except Exception as again:  # e.g. the bot cannot even be loaded: the log says it
            log.error("bot %s: its failure could not be recorded: %s", bot_id, _reason(again))
            return 0

    def close_deal(self, bot_id: UUID, reason: CloseReason = CloseReason.MANUAL,
                   actor: str = SYSTEM, correlation_id: str | None = None,
                   also: AlsoSaved | None = None) -> UUID:
        """Close the open deal of ``bot_id`` now: its engine sells the units at the venue's
        current price. Returns the deal's id. ``DEAL_NOT_OPEN`` without an open deal,
        ``CLOSE_REJECTED`` when the venue refuses the sell (e.g. no price yet after a
        restart): the deal then stays open."""
        with self.lock:
            bot = self.trading.get_bot(bot_id)
            if bot.open_deal_id is not None:
                self.follow(bot_id)  # a no-op for a bot this runner already trades
            market, engine = self._engine_of(bot_id)
            if engine is None or engine.deal is None:
                raise InvalidTransitionError("the bot has no open deal to close",
                                             code="DEAL_NOT_OPEN")
            deal_id = engine.deal.id
            engine.bot = bot
            engine.begin_step(self.trading.cause(actor, correlation_id))
            engine.close_at_market(reason)
            changes = engine.take_changes()
            if self.risk is not None:
                changes += self.risk.count_closed(
                    _closed_deals(changes), engine.cause,
                    lambda other: bot if other == bot_id else self._bot_of(other))
            self._append_or_reload(
                bot_id, [*changes, *(also(deal_id, engine.deal is None) if also else ())])
            if engine.deal is not None:
                refused = [a.reason for a in changes
                           if isinstance(a, Order) and a.status is OrderStatus.REJECTED]
                raise DomainError(f"the venue refused the market sell: "
                                  f"{refused[0] if refused else 'not filled'}",
                                  code="CLOSE_REJECTED")
            self._stale.update(self._markets)  # its market and any bot the risk paused
            if engine.bot.status is not BotStatus.RUNNING:
                del market.engines[bot_id]  # nothing left open, and it opens no more deals
            return deal_id

    def unfollow(self, bot_id: UUID, *, release: bool = False) -> None:
        """Stop trading a bot that holds no open deal here (it moved to another account);
        ``follow`` then trades it on its new account's venue. ``release``: another engine
        worker trades it from now on, open deal or not; a venue left with nothing on it is
        forgotten too (the next one is made from the log, with the other worker's fills)."""
        with self.lock:
            market, engine = self._engine_of(bot_id)
            if market is not None and (release or engine.deal is None):
                del market.engines[bot_id]
                self._stale.add((engine.bot.exchange_account_id, engine.bot.config.pair))
            if release and market is not None and not market.busy:
                self._markets = {k: m for k, m in self._markets.items() if m is not market}

    def refresh_index(self) -> None:
        """Read the log's orders and fills again at the next need: another engine worker
        wrote some for the bots this one takes over."""
        with self.lock:
            self._log = None

    def traded_pairs(self) -> set[str]:
        """The pairs some bot trades here: what a live market feed must follow."""
        with self.lock:
            return {pair for (_, pair), market in self._markets.items() if market.busy}

    def _engine_of(self, bot_id: UUID) -> tuple[_Market | None, DcaEngine | None]:
        for market in self._markets.values():
            if bot_id in market.engines:
                return market, market.engines[bot_id]
        return None, None

    def _market(self, account_id: str, pair: str) -> _Market:
        key = (account_id, pair)
        if key not in self._markets:
            account = self._preloaded_account(account_id)
            if account is None:
                self._markets[key] = _Market(self._paper_venue(account_id, pair))
            else:
                self._markets[key] = self._live_market(account, pair)
            self._opened += 1
            self._markets[key].order = self._opened
            self._stale.add(key)
            if pair in self._last_close:  # a position opened now trades at the last close
                self._markets[key].venue.price = self._last_close[pair]
        return self._markets[key]

    def _live_market(self, account: ExchangeAccount, pair: str) -> _Market:
        if self.live_venues is None:
            raise DomainError("this server trades on paper only: live accounts need the "
                              "exchange adapters", code="LIVE_TRADING_DISABLED")
        venue = self.live_venues(account, pair)
        market = _Market(venue)

        def write_ahead() -> None:
            """Store every decision taken so far (the order about to be sent included)
            before a request leaves for the exchange."""
            for bot_id, engine in list(market.engines.items()):
                self._stage(engine.take_changes(), (bot_id,))
            if market.desk is not None:
                self._stage(market.desk.take_changes())
            self._flush()

        venue.before_request = write_ahead
        return market

    def _preloaded(self, account_id: str) -> ExchangeAccount | None:
        try:
            return self._accounts.get(UUID(account_id))
        except ValueError:
            return None

    def _preloaded_account(self, account_id: str) -> ExchangeAccount | None:
        """The account if it is live (as ``_live_account``), from what ``resume`` loaded."""
        account = self._preloaded(account_id)
        if account is None:
            return _live_account(self.trading, account_id)
        return account if account.kind is AccountKind.LIVE else None

    def market_rules(self, account_id: str, pair: str):
        """A live account's exchange rules for ``pair`` (None for paper accounts, and where
        this runner has no exchange adapters)."""
        rules_of = getattr(self.live_venues, "market_rules", None)
        account = _live_account(self.trading, account_id) if rules_of else None
        return None if account is None else rules_of(account, pair)

    def desk(self, account_id: str, pair: str) -> PositionDesk:
        """The positions' desk of an account on a pair (call with ``lock`` held)."""
        market = self._market(account_id, pair)
        if market.desk is None:
            market.desk = PositionDesk(market.venue, self.ids)
        return market.desk

    def positions_of(self, account_id: str) -> list:
        """The open positions of an account's desks (users' own, outside bots)."""
        return [position for (account, _), market in self._markets.items()
                if account == account_id and market.desk is not None
                for position in market.desk.positions.values()]

    def engines_of(self, account_id: str) -> list[DcaEngine]:
        return [engine for (account, _), market in self._markets.items()
                if account == account_id for engine in market.engines.values()]

    def save_aggregates(self, aggregates) -> int:
        """Save aggregates changed outside an engine step (reconciliation), in one
        transaction; call with ``lock`` held."""
        return self._save_now(aggregates)

    def live_markets(self) -> list[tuple[str, str, LiveVenue]]:
        """(account id, pair, venue) of every live market this runner trades."""
        return [(account, pair, m.venue) for (account, pair), m in self._markets.items()
                if isinstance(m.venue, LiveVenue)]

    def paper_wallet(self, account_id: str) -> dict[str, Balance]:
        """A paper account's balances as its venue holds them (one wallet for all its
        pairs); without a venue yet, what its deposits and fills made (nothing locked)."""
        with self.lock:
            venue = self._wallet_venue(account_id)
            if venue is not None:
                return {a: b for a, b in venue.fetch_balance().items() if a}
            held = _deposits(self.trading, account_id)
            for asset, change in self._index().asset_fills(account_id).items():
                held[asset] = held.get(asset, ZERO) + change
            return {asset: Balance(amount) for asset, amount in held.items()}

    def credit_paper(self, account_id: str, asset: str, amount: Decimal) -> None:
        """A deposit (or, negative, a withdrawal) just recorded on a paper account reaches
        its venue, when it has one (a venue made later reads it from the events)."""
        with self.lock:
            venue = self._wallet_venue(account_id)
            if venue is not None:
                venue.add_balance(asset, amount)

    def _wallet_venue(self, account_id: str) -> PaperVenue | None:
        return next((m.venue for (account, _), m in self._markets.items()
                     if account == account_id and hasattr(m.venue, "join_wallet")), None)

    def _paper_venue(self, account_id: str, pair: str) -> PaperVenue:
        """The account's venue for ``pair``. An account's pairs share one wallet: its
        deposits and every pair's fills, each asset counted once."""
        base, _, quote = pair.partition("/")
        sibling = self._wallet_venue(account_id)
        if sibling is not None:
            venue = self.venue_factory(pair, ZERO, ZERO)
            venue.join_wallet(sibling)
            return venue
        balances = (_deposits(self.trading, account_id) if self._given is None
                    else dict(self._given.get(account_id, {})))
        for asset, change in self._index().asset_fills(account_id).items():
            balances[asset] = balances.get(asset, ZERO) + change
        venue = self.venue_factory(pair, balances.pop(quote, ZERO), balances.pop(base, ZERO))
        for asset, amount in sorted(balances.items()):
            if amount:
                venue.add_balance(asset, amount)
        return venue


def _band(market: _Market) -> Band:
    """Where a candle must reach for ``market`` to act: its venue's resting orders and its
    watchers' levels (the backtest's skip), or every candle while a bot waits for a close
    to open a deal, a live venue (asked at every step) or a ladder to finish."""
    if isinstance(market.venue, LiveVenue) or market.unreconciled:
        return Band(None, None, True)
    below, above = market.venue.trigger_band(market)
    return Band(below, above, any(e.wants_next_close for e in market.engines.values()))


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, ArithmeticError) and text.startswith("[<class"):
        # decimal's signals say only their class: say what it means for the bot
        text = "a calculation went out of range: check the configuration's numbers"
    return f"{type(error).__name__}: {text}"[:300]


def _closed_deals(changes) -> list[Deal]:
    """The deals among a step's changes that it closed."""
    return [a for a in changes if isinstance(a, Deal) and a.status is DealStatus.CLOSED]


# The events other writers change a bot with (its engine's copy is then loaded again)
_BOT_TOPICS = tuple(sorted(topic_of(kind) for kind in vars(Bot).values()
                           if isinstance(kind, type) and issubclass(kind, Bot.Event)))


@cache
def _switch_topics() -> tuple[str, ...]:
    """The trading switch's events (imported at the first candle: servers only)."""
    from domain.system import TradingSwitch

    return tuple(sorted(topic_of(kind) for kind in vars(TradingSwitch).values()
                        if isinstance(kind, type) and issubclass(kind, TradingSwitch.Event)))


# A user's risk limits, set by another writer (the risk limits then load them again)
_RISK_TOPICS = (topic_of(UserRisk.Opened),)


def _bot_ids(trading: Trading) -> list[UUID]:
    return [n.originator_id for n in read_log(trading, [topic_of(Bot.Created)])]


def _account_ids(texts) -> list[UUID]:
    ids = []
    for text in dict.fromkeys(texts):
        try:
            ids.append(UUID(text))
        except ValueError:  # e.g. backtests' "paper"
            continue
    return ids


def _live_account(trading: Trading, account_id: str) -> ExchangeAccount | None:
    try:
        account = trading.load(UUID(account_id), ExchangeAccount)
    except (ValueError, NotFoundError):
        return None
    return account if account.kind is AccountKind.LIVE else None


def _deposits(trading: Trading, account_id: str) -> dict[str, Decimal]:
    """What a paper account was given, by asset (deposits less withdrawals)."""
    try:
        account = trading.load(UUID(account_id), ExchangeAccount)
    except (ValueError, NotFoundError):
        return {}  # e.g. backtests' "paper": no deposits recorded
    given: dict[str, Decimal] = {}
    for event in trading.events.get(account.id):
        if isinstance(event, ExchangeAccount.Deposited | ExchangeAccount.Withdrawn):
            sign = -1 if isinstance(event, ExchangeAccount.Withdrawn) else 1
            given[event.asset] = given.get(event.asset, ZERO) + sign * event.amount
    return given

"""Paper trading in real time: every running bot, on its account's paper venue, fed one
closed candle at a time. The same DcaEngine as backtests; only the feed's pace differs.

State lives in events only: on start (and after a restart) each running bot's engine is
rebuilt from its Bot, open Deal and open Orders, and its paper venue from the account's
deposits and fills, so a restarted bot carries on without placing any order twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from uuid import UUID

from application.engine import DcaEngine
from application.level_index import LevelIndex
from application.paper_deals import DealsNow
from application.paper_follow import Following
from application.paper_heap import StepSurvivors
from application.paper_log import PaperLog, RestartBook
from application.paper_market import (
    LiveVenueFactory,
    Market,
    VenueFactory,
    error_reason,
    market_band,
)
from application.paper_races import CandleRaces, Turn
from application.paper_venues import Venues
from application.replay import read_log
from application.risk_limits import RiskLimits, logged_exposure
from application.step_lock import StepLock
from application.trading import Trading
from domain.accounts import ExchangeAccount
from domain.bots import Bot, BotStatus
from domain.errors import ConcurrencyConflictError
from domain.money import ZERO
from domain.ports import IdSource
from domain.recording import ENGINE, Cause, topic_of
from domain.risk import Exposure, UserRisk

log = logging.getLogger("tradetape.paper")


class PaperTrading(CandleRaces, Following, Venues, DealsNow):
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
        self._markets: dict[tuple[str, str], Market] = {}
        # bots a start could not load (``resume``): not traded, their deals counted from
        # the log in their owners' figures (``exposure_of``)
        self._unloaded: dict[UUID, str] = {}
        self._seats: dict[UUID, tuple[str, str]] = {}  # bot -> its market's key (_seat)
        # account -> (key, market) of its first paper market (paper_venues._wallet_venue)
        self._wallet_hints: dict[str, tuple[tuple[str, str], Market]] = {}
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
        self._prefetched: dict[tuple[str, str], Market] = {}  # owners' limits asked for
        self._stale: set[tuple[str, str]] = set()  # markets whose band must be measured
        self._entries_seen = -1  # the lock's entries at the end of the last step
        # Aggregates a step changed, saved together at its end (``_flush``)
        self._pending: list = []
        self._pending_bots: set[UUID] = set()
        self._turn: Turn | None = None  # the candle being stepped (``on_candle``)
        self._unfollowed: set[UUID] = set()  # to follow again from the log (paper_races)
        # A server's live loop keeps what its steps leave alive out of the collector's
        # passes (application/paper_heap.py); None: left to the collector (tests, tools)
        self.survivors: StepSurvivors | None = None
        self.appended = 0  # events appended so far
        # The log's position up to which other writers' changes to bots were looked for
        self._seen = trading.recorder.max_notification_id() or 0
        # The trading switch as last loaded (None: to load). Loading it before every candle
        # was a query each (a fifth of a step's time at 1,000 bots on a loaded machine);
        # the log scan above shows whenever anyone changed it since.
        self._switch_halted: bool | None = None
        # Closed deals whose counting (and the pause a limit reached) was refused: again
        self._uncounted: list[tuple[list, Cause]] = []

    def _index(self) -> PaperLog:
        """The log's orders and fills: read at the first need, then kept current (this runner
        is the one that places and fills paper orders)."""
        if self._log is None:
            self._log = PaperLog(self.trading)
        return self._log

    def _step_candle(self, pair: str, ts_ms: int,
                     candle: tuple[Decimal, Decimal, Decimal, Decimal], at, turn: Turn) -> None:
        """One attempt at a candle: the markets it reaches that this candle has not
        settled yet (``Turn``) are stepped, and what they changed is appended."""
        self._see_other_writers()  # (notes a change of the trading switch too)
        if self._unfollowed:
            self._follow_again()
        if self._halted():
            return  # emergency stop: no deal opens, no order is placed
        cause = Cause(at, ENGINE, f"paper:{pair}:{ts_ms}")
        if self.risk is not None:
            self._count_again()
            self._lift_daily_pauses(cause)
        self._last_close[pair] = c = candle[3]
        reached = self._reached(pair, candle[2], candle[1])
        if self.risk is not None:
            self._prefetch_owners(reached)
        for key, market in list(self._markets.items()):
            if key[1] != pair:
                continue
            if key in reached and market.busy and not turn.settled(key, market):
                if turn.leaves_out(key, market):
                    continue  # its owner's hold is kept elsewhere: at their next chance
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
                index.put(key, market.order, market_band(market))
        return set(index.reached(low, high))

    def _prefetch_owners(self, reached: set[tuple[str, str]]) -> None:
        """The risk limits of the owners of the markets ``reached`` asked for in one query
        (``RiskLimits.prefetch``), once per market: walking every bot of every reached
        market for its owner at each candle cost more than the query saved (a bot added
        to a market later has the account's owner, asked for already; were it another,
        its limits would be loaded at its first buy, as any owner not prefetched is)."""
        markets, asked = self._markets, self._prefetched
        fresh = [(key, market) for key in reached if (market := markets.get(key)) is not None
                 and asked.get(key) is not market]
        if not fresh:
            return
        self.risk.prefetch(engine.bot.owner_id for _, market in fresh
                           for engine in market.engines.values())
        asked.update(fresh)

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
                # a limit set elsewhere, or a halt begun or lifted (its bots held here
                self.risk.forget(notification.originator_id, notification.topic)  # resume)
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

    def _step(self, market: Market, cause: Cause,
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
        if self._void(market):
            return
        if self.risk is not None:
            self._count_closed(market, cause)
        for bot_id, engine in list(market.engines.items()):
            try:
                if walked and market.unreconciled and bot_id in market.unreconciled:
                    engine.resume_ladder(market.unreconciled.pop(bot_id))
                if walked:
                    engine.on_close(c)
            except Exception as error:
                if self._void(market):
                    return
                market.fail(bot_id, error)
                continue
            self._stage(engine.take_changes(), (bot_id,))
            if engine.deal is None and engine.bot.status is not BotStatus.RUNNING:
                del market.engines[bot_id]  # paused or stopped, nothing left open
        for bot_id, error in market.take_failures():
            self._record_failure(bot_id, cause, error)

    def _void(self, market: Market) -> bool:
        """A live venue's write-ahead (``paper_venues.py``) was refused or failed by the
        store during this step: the market was rebuilt from the log, what the rest of its
        step would do is void, and the error it raised in an engine is no bot's fault (not
        recorded on the bot)."""
        return self._turn is not None and self._turn.dropped(market)

    def _count_closed(self, market: Market, cause: Cause) -> None:
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
        self._uncounted.append((closed, cause))  # until stored (``_count_again``)
        self._count_again()

    def _count_again(self) -> None:
        """Count the closed deals not counted yet, and save the pauses a limit they reach
        makes. Refused (another writer changed one of the owner's bots or limits first), or
        failed by the store (``APPEND_FAILED``), nothing is stored and they stay here: the
        next attempt at a candle (at once on a race, on the bots as the log has them then;
        the next candle after a failure) counts them again, with their own cause. Else
        the deals were never counted and the bots traded on past their limit (their step
        stored, it is not stepped again)."""
        while self._uncounted:
            closed, cause = item = self._uncounted.pop(0)
            try:
                paused = self.risk.count_closed(closed, cause, self._bot_of)
                events = sum(len(a.pending_events) for a in paused)
                stored = self._save_now(paused, [a.id for a in paused if isinstance(a, Bot)])
            except Exception as error:
                # Refused, or the store failed (APPEND_FAILED): counted again at the next
                # attempt; any other error (a bug of the count): as before, not again
                if isinstance(error, ConcurrencyConflictError) or (
                        self._turn is not None and self._turn.failed is error):
                    self._uncounted.insert(0, item)
                raise
            if stored < events:  # refused without a raise (an engine worker's LEASE_LOST:
                self._uncounted.insert(0, item)  # the candle is stepped again, see
                return  # ``LeasedPaperTrading._append``)
            self.risk.saved(paused)  # (the pause watched for its lift once stored only)
            self._stale.update(self._markets)  # paused bots elsewhere open no deal at a close

    def _bot_of(self, bot_id: UUID) -> Bot | None:
        """The bot as this runner's engine holds it, else as the log has it."""
        engine = self._engine_of(bot_id)[1]
        return engine.bot if engine is not None else self.trading.get_bot(bot_id)

    def _lift_daily_pauses(self, cause: Cause) -> None:
        """The first step of a new day resumes the bots the daily loss limit paused,
        saved as the engines' other writes are (``_save_now``: fenced on an engine
        worker). Refused, the owner stays due: the next step tries again; a bot another
        worker trades is resumed by that worker (``RiskLimits.lift``)."""
        for owner_id in self.risk.due(cause.at):
            changes = self.risk.lift(owner_id, cause, self._resumable)
            bots = [a for a in changes if isinstance(a, Bot)]
            events = sum(len(a.pending_events) for a in changes)
            if self._save_now(changes, [b.id for b in bots]) < events:
                continue  # refused without a raise (an engine worker's LEASE_LOST)
            self.risk.saved(changes)
            for bot in bots:
                if bot.status is BotStatus.RUNNING:
                    self.follow(bot.id)

    def _resumable(self, bot_id: UUID) -> Bot | None:
        """A bot a new day resumes, as this runner writes it (None: not its to write)."""
        return self._bot_of(bot_id)

    def exposure_of(self, owner_id: str) -> Exposure:
        """The owner's open deals on this runner and the quote they commit (the risk
        limits' figures: from the engines' state, never a read model)."""
        deals, committed = 0, ZERO
        for market in self._markets.values():
            for engine in market.engines.values():
                if engine.bot.owner_id == owner_id and engine.deal is not None:
                    deals += 1
                    committed += engine.committed_quote()
        if self._unloaded and owner_id in self._unloaded.values():
            return Exposure(deals, committed) + logged_exposure(
                self.trading, [b for b, o in self._unloaded.items() if o == owner_id])
        return Exposure(deals, committed)

    def _walk(self, market: Market, candle: tuple[Decimal, Decimal, Decimal, Decimal],
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
            if self._write_ahead_failed(market, error):
                pass  # said once: by the candle's retry line, or by APPEND_FAILED
            else:
                log.error("the paper venue failed on a candle: %s", error_reason(error))
            walked = False
        if desk is not None:
            self._stage(desk.take_changes())
        return walked

    def _write_ahead_failed(self, market: Market, error: Exception) -> bool:
        """``error`` is the candle's own append, refused by a race or failed by the store,
        raised by the write-ahead of a request the live venue sends itself while it polls
        (a cancel sent again): no fault of the venue's. The request never left; the market
        is stepped again with the candle (``on_candle``), unless it was rebuilt."""
        turn = self._turn
        if turn is None or not any(error is e for e in (turn.refused, turn.failed)):
            return False
        for key, stepped in list(turn.stepped.items()):
            if stepped is market:
                del turn.stepped[key]
        return True

    def _record_failure(self, bot_id: UUID, cause: Cause, error: Exception) -> int:
        """The bot goes to ERROR with the reason (resetting the error brings it back
        paused); one log line, no traceback: the reason is the bot's state, not a bug of
        the loop's."""
        reason = f"the engine failed on this bot's step: {error_reason(error)}"
        log.error("bot %s failed at %s and was set to error: %s", bot_id,
                  cause.correlation_id, error_reason(error))
        try:
            bot = self.trading.get_bot(bot_id)
            if bot.status not in (BotStatus.CREATED, BotStatus.RUNNING, BotStatus.PAUSED):
                return 0  # already failed (or stopped): said once is enough
            bot.fail(cause, reason)
            return self._save_now([bot], (bot_id,))
        except Exception as again:  # e.g. the bot cannot even be loaded: the log says it
            log.error("bot %s: its failure could not be recorded: %s", bot_id, error_reason(again))
            return 0

    def traded_pairs(self) -> set[str]:
        """The pairs some bot trades here: what a live market feed must follow."""
        with self.lock:
            return {pair for (_, pair), market in self._markets.items() if market.busy}

    def save_aggregates(self, aggregates) -> int:
        """Save aggregates changed outside an engine step (reconciliation), in one
        transaction; call with ``lock`` held."""
        return self._save_now(aggregates)


# The events other writers change a bot with (its engine's copy is then loaded again)
_BOT_TOPICS = tuple(sorted(topic_of(kind) for kind in vars(Bot).values()
                           if isinstance(kind, type) and issubclass(kind, Bot.Event)))


@cache
def _switch_topics() -> tuple[str, ...]:
    """The trading switch's events (imported at the first candle: servers only)."""
    from domain.system import TradingSwitch

    return tuple(sorted(topic_of(kind) for kind in vars(TradingSwitch).values()
                        if isinstance(kind, type) and issubclass(kind, TradingSwitch.Event)))


# A user's risk limits, set by another writer (the risk limits then load them again), and
# a halt begun or lifted by another engine worker (the bots it paused that this one trades
# are resumed here: ``RiskLimits.lift``)
_RISK_TOPICS = (topic_of(UserRisk.Opened), topic_of(UserRisk.DailyLossReached),
                topic_of(UserRisk.DailyLossLifted))

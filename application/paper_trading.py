"""Paper trading in real time: every running bot, on its account's paper venue, fed one
closed candle at a time. The same DcaEngine as backtests; only the feed's pace differs.

State lives in events only: on start (and after a restart) each running bot's engine is
rebuilt from its Bot, open Deal and open Orders, and its paper venue from the account's
deposits and fills, so a restarted bot carries on without placing any order twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

from application.appends_ahead import AppendsAhead, Sent
from application.level_index import LevelIndex, band_reaches
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
from application.paper_risk import RiskCounting
from application.paper_venues import Venues
from application.paper_writers import OtherWriters
from application.risk_limits import RiskLimits
from application.step_lock import StepLock
from application.trading import Trading
from domain.accounts import ExchangeAccount
from domain.bots import BotStatus
from domain.ports import IdSource
from domain.recording import ENGINE, Cause

log = logging.getLogger("tradetape.paper")
Candle = tuple[Decimal, Decimal, Decimal, Decimal]  # open, high, low, close


class PaperTrading(CandleRaces, Following, Venues, DealsNow, OtherWriters, RiskCounting):
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
        # A heavy candle's changes stored while its other markets are decided (an engine
        # on PostgreSQL: wired by the composition root); None: one append at its end
        self.appends_ahead: AppendsAhead | None = None
        self._ahead: list[Sent] = []  # sent ahead, not settled yet (``_settle_ahead``)
        self._turn: Turn | None = None  # the candle being stepped (``on_candle``)
        self._batch_head = None  # (id, version) of the first event of the last append
        # Candles a market was left out of (its owner's exposure hold kept elsewhere), in
        # order: stepped before its next candle once the hold is let go (paper_races)
        # (the market they are owed by: see ``_owed_to``)
        self._owed: dict[tuple[str, str], tuple[Market, deque[tuple[int, Candle]]]] = {}
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
        owed = self._owed
        for key, market in list(self._markets.items()):
            if key[1] != pair:
                continue
            missed = self._owed_to(key, market, turn) if owed else None
            if (key in reached or missed) and market.busy and not turn.settled(key, market):
                if turn.leaves_out(key, market):
                    continue  # its owner's hold is kept elsewhere: at their next chance
                turn.stepped[key] = market
                self._stale.add(key)
                try:
                    if missed:
                        self._step_owed(market, missed, pair, at, cause, candle)
                    else:
                        self._step(market, cause, candle)
                    self._send_ahead()
                except BaseException:  # (not the appends': they raise in ``_flush``)
                    with contextlib.suppress(Exception):
                        self._settle_ahead()  # nothing left on the appending thread
                    raise
            else:
                market.venue.price = c  # what a walk would have left it at
        self._flush()

    def _step_owed(self, market: Market, owed: deque[tuple[int, Candle]], pair: str, at,
                   cause: Cause, candle: Candle) -> None:
        """The candles ``market`` was left out of, in order, then this one: each that
        reaches its band as it stands after the one before (the others only set the
        price), so its bots' orders fill as the market went while their owner's hold was
        kept, not only at the candle after it was let go."""
        steps = [(Cause(at, ENGINE, f"paper:{pair}:{ts_ms}"), missed) for ts_ms, missed in owed]
        for step_cause, one in [*steps, (cause, candle)]:
            if band_reaches(market_band(market), one[2], one[1]):
                self._step(market, step_cause, one)
            else:
                market.venue.price = one[3]

    def _reached(self, pair: str, low: Decimal, high: Decimal) -> set[tuple[str, str]]:
        """The markets of ``pair`` a candle from ``low`` to ``high`` reaches. Their bands are
        measured again where a step or anyone holding the lock since may have moved them
        (a quiet holder, the lease manager, marks the markets it moves: ``StepLock``)."""
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

    def _drop_band(self, key: tuple[str, str]) -> None:
        self._stale.discard(key)
        index = self._levels.get(key[1])
        if index is not None:
            index.drop(key)

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

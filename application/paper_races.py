"""A candle's one transaction in :class:`~application.paper_trading.PaperTrading`, and the
race with another writer: a refused append rebuilds the markets of the bots it carried from
the log (as at a restart), and the candle is stepped again on them, at most ``RESTEPS``
times, then skipped (``CANDLE_SKIPPED``: owed to those markets, stepped before their next
candle). An append the store fails (down, the connection
cut, a timeout: ``APPEND_FAILED``) rebuilds them too, and the log is asked whether it holds
the append: if not, the candle is owed to those markets as a skipped one is; if it does
(the answer lost after the commit) or cannot say (the store still down), it is not stepped
again, and its bots go on from the log at the next one."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from application.appends_ahead import Sent
from application.collector import collector_paused
from application.lease_fence import Fence, fenced
from application.paper_market import Market, error_reason
from domain.bots import BotStatus
from domain.errors import ConcurrencyConflictError, ExposureHeldError, LeaseLostError

log = logging.getLogger("tradetape.paper")
# What the APPEND_FAILED line adds, by whether the log holds the failed append (None: the
# log could not be asked)
_AFTER_FAILURE = {True: " (it was stored: only the answer was lost)",
                  False: "; nothing of it was stored: the candle is stepped on them before "
                         "the next one",
                  None: ""}
# A candle refused by a race is stepped again this many times at most, then skipped
RESTEPS = 3
# Candles a market left out for a kept exposure hold keeps owing (a day of 1-minute ones;
# the oldest dropped past it, said once: CANDLES_DROPPED)
MAX_OWED = 1440


@dataclass
class Turn:
    """A candle's attempts (``PaperTrading.on_candle``). A market is stepped once per
    candle: again only when the log does not hold its step (its append was refused and the
    market rebuilt from the log: a new object), never when its step is stored (by a flush
    before the refused one) or changed nothing (not rebuilt). A market the refused append
    rebuilt is not stored whole, whatever a write-ahead of its step stored before (a live
    venue's, mid-step: a cancel, an exit's sell): it is stepped again."""

    stepped: dict[tuple[str, str], Market] = field(default_factory=dict)
    stored: set[tuple[str, str]] = field(default_factory=set)
    # in the attempt under way: a race, or a lease lost (LEASE_LOST, leased_paper.py)
    refused: ConcurrencyConflictError | LeaseLostError | None = None
    # an append the store failed (down, connection cut, timed out): APPEND_FAILED
    failed: Exception | None = None
    unstored: bool = False  # ... and the log, asked after, holds nothing of it
    rebuilt: list[Market] = field(default_factory=list)  # markets rebuilt from the log
    # owners whose exposure hold another process keeps (EXPOSURE_HELD): their markets are
    # left out of the attempt under way (``left_out``), the other bots appended without them
    kept: set[str] = field(default_factory=set)
    left_out: set[tuple[str, str]] = field(default_factory=set)
    skipped: bool = False  # refused at every attempt (CANDLE_SKIPPED): nothing stored

    def leaves_out(self, key: tuple[str, str], market: Market) -> bool:
        """``market`` trades for an owner whose hold is kept elsewhere: not stepped now."""
        if self.kept and any(e.bot.owner_id in self.kept for e in market.engines.values()):
            self.left_out.add(key)
            return True
        return False

    def settled(self, key: tuple[str, str], market: Market) -> bool:
        return key in self.stored or self.stepped.get(key) is market

    def dropped(self, market: Market) -> bool:
        """``market`` was rebuilt from the log in this candle: what it does is void."""
        return any(m is market for m in self.rebuilt)


class CandleRaces:
    """Mixed into PaperTrading: the candle's one transaction (``_stage``, ``_flush``) and
    what happens when another writer saved one of its bots first (``on_candle``)."""

    def _append(self, aggregates, bot_ids=()) -> int:
        """The one way the engines' changes reach the log: save ``aggregates`` (what the
        steps of ``bot_ids`` changed) in one transaction, and keep the index current with
        it. Nothing changed, nothing written (no empty transaction). An engine worker fences
        its appends with the leases of ``bot_ids`` (``application/leased_paper.py``)."""
        events = self._collected(aggregates)
        if not events:
            return 0
        return self._appended(events, self.trading.append_positions(events))

    def _collected(self, aggregates) -> list:
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if events:
            self._batch_head = (events[0].originator_id, events[0].originator_version)
        return events

    def _appended(self, events: list, positions: list[int]) -> int:
        """``events`` stored at ``positions``: counted, and the index kept current."""
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

    def _fence_of(self, aggregates: list, bot_ids) -> tuple[Fence | None, set]:
        """The fence of an append of ``aggregates`` and the bots it checks: none here (an
        engine worker's: ``LeasedPaperTrading``)."""
        return None, set()

    def _lease_lost(self, error: LeaseLostError, bots, also=()) -> None:
        raise error  # (only an engine worker's appends are fenced by leases)

    def _stage(self, aggregates, bot_ids=()) -> None:
        """Keep a step's changes for the candle's one transaction (``_flush``)."""
        if aggregates:
            self._pending.extend(aggregates)
            self._pending_bots.update(bot_ids)

    def _send_ahead(self) -> None:
        """Once a candle's steps have staged enough, send their changes to the log on the
        appending thread (``application/appends_ahead.py``) while the loop decides on; the
        candle's ``_flush`` waits for them."""
        ahead = self.appends_ahead
        if ahead is None or len(self._pending) < ahead.aggregates:
            return
        aggregates, bot_ids = self._pending, self._pending_bots
        self._pending, self._pending_bots = [], set()
        fence, bots = self._fence_of(aggregates, bot_ids)
        events = self._collected(aggregates)
        if not events:
            return
        turn = self._turn
        append = self.trading.prepared_append(events)  # (made here: the loop holds the GIL)

        def write() -> list[int]:
            with fenced(fence):  # (a fence is the appending thread's own)
                return append()

        self._ahead.append(Sent(events, set(bot_ids), bots, self._batch_head,
                                list(turn.stepped.items()) if turn is not None else [],
                                ahead.send(write)))

    def _settle_ahead(self) -> None:
        """Wait for the appends sent ahead, and take in what they did, in order: each stored
        is counted and its markets' steps are stored; at the first that failed, its bots,
        those of every append behind it (never sent) and those staged since are rebuilt
        from the log, and the failure handled as ``_flush`` handles its own (raised, but a
        lease lost, as ``LeasedPaperTrading._append`` does)."""
        sent, self._ahead = self._ahead, []
        if not sent:
            return
        failed, void = None, set()
        for one in sent:
            try:
                positions = one.future.result()
            except Exception as error:
                failed = failed or (one, error)
                void |= one.bot_ids | one.bots
                continue
            self._appended(one.events, positions)
            self._stored_steps(one.stepped)
        self.appends_ahead.settled()
        if failed is None:
            return
        one, error = failed
        void |= self._pending_bots  # (decided after what failed: void with it)
        self._pending, self._pending_bots = [], set()
        if isinstance(error, LeaseLostError):
            self._lease_lost(error, one.bots, void)
            return
        self._batch_head = one.head
        self._append_refused(error, void)

    def _stored_steps(self, stepped) -> None:
        turn = self._turn
        if turn is not None:
            turn.stored.update(k for k, m in stepped if self._markets.get(k) is m)

    def _flush(self) -> int:
        """Append what the steps staged, in the order they decided it, after what was sent
        ahead (``_settle_ahead``). Should another writer have saved one of those bots first,
        nothing is stored, and the markets of the staged bots are rebuilt from the log (as
        at a restart) before the conflict is raised: no engine keeps decisions the log does
        not hold (``on_candle`` then steps its candle again on those markets). So too when
        the store fails the append (one ``APPEND_FAILED`` line; the error raised for the
        caller). Returns the events appended of what was staged (not of what was sent
        ahead: a caller compares it with what it staged)."""
        self._settle_ahead()
        aggregates, bot_ids = self._pending, self._pending_bots
        if not aggregates:
            return 0
        self._pending, self._pending_bots = [], set()
        self._batch_head = None  # (set by ``_append`` once its events are made)
        try:
            appended = self._append(aggregates, bot_ids)
        except Exception as error:
            self._append_refused(error, bot_ids)
        if self._turn is not None:
            self._stored_steps(self._turn.stepped.items())
        return appended

    def _append_refused(self, error: Exception, bot_ids) -> None:
        """What an append that stored nothing leaves: the markets of ``bot_ids`` rebuilt
        from the log, the candle's turn told, and ``error`` raised."""
        turn = self._turn
        if isinstance(error, ConcurrencyConflictError):
            self._rebuild_markets(bot_ids)
            if turn is not None:  # (a step's failure line swallows it: noted here)
                turn.refused = error
            raise error
        # The store failed: nothing of it is stored either. One line, no traceback (the
        # store's own words name no password); the engines must not keep decisions the
        # log lacks: their next append would leave a gap in the versions, and a paused
        # bot would stay paused in memory only.
        stored = self._batch_stored()
        log.error("an append of %d bots' changes failed (APPEND_FAILED): %s; their markets "
                  "go on from the log%s", len(bot_ids), error_reason(error),
                  _AFTER_FAILURE[stored])
        self._rebuild_markets(bot_ids)
        if turn is not None:
            turn.failed, turn.unstored = error, stored is False
        raise error

    def _batch_stored(self) -> bool | None:
        """Whether the log holds the first event of the append that just failed (one
        transaction: all of it or none); None when the log cannot say (the store still
        down). WHY: a connection cut after the commit loses only the answer, and then the
        candle must not be stepped twice; cut before it, nothing is stored, and the candle
        is owed to the markets it reached (``_owe_deferred``) instead of lost to them."""
        if self._batch_head is None:  # failed before its events were made
            return None
        originator_id, version = self._batch_head
        try:
            return bool(self.trading.recorder.select_events(
                originator_id, gt=version - 1, lte=version, limit=1))
        except Exception:  # (the failure's line says the rest)
            return None

    def _save_now(self, aggregates, bot_ids=()) -> int:
        """Save at once (outside a candle's batch), after anything staged before."""
        self._stage(aggregates, bot_ids)
        return self._flush()

    def _rebuild_markets(self, bot_ids) -> None:
        """Forget the markets trading ``bot_ids`` and follow their bots again from the log."""
        error = None
        for key, market in list(self._markets.items()):
            if bot_ids & market.engines.keys():
                del self._markets[key]
                self._drop_band(key)
                if self._turn is not None:
                    self._turn.rebuilt.append(market)
                    # Its bots' changes were refused: its step is not whole in the log,
                    # though a write-ahead stored part of it (a live order's, mid-step).
                    self._turn.stored.discard(key)
                for other in list(market.engines):
                    error = self._follow_from_log(other) or error
        if error is not None:  # (one line for the rebuild: the store is down for all)
            log.error("bots could not be followed again from the log (FOLLOW_AGAIN): %s; "
                      "tried again at each candle", error_reason(error))

    def _follow_from_log(self, bot_id) -> Exception | None:
        """Follow ``bot_id`` again as the log has it (as ``resume`` would). The log out of
        reach (the store down), it is tried again at each candle (``_follow_again``)
        instead of the bot being left untraded until a restart: the error."""
        try:
            bot = self.trading.get_bot(bot_id)
            if bot.status is BotStatus.RUNNING or bot.open_deal_id is not None:
                self.follow(bot_id)
        except Exception as error:
            self._unfollowed.add(bot_id)
            return error
        self._unfollowed.discard(bot_id)
        return None

    def _follow_again(self) -> None:
        """The bots a rebuild could not read from the log: read again now (quietly: the
        rebuild said it once)."""
        for bot_id in list(self._unfollowed):
            self._follow_from_log(bot_id)

    def _kept_holds(self) -> set[str]:
        """The owners whose exposure hold another process keeps now (found so by an
        append: ``ExposureHolds.kept``); none without holds."""
        holds = self.risk.holds if self.risk is not None else None
        return holds.kept() if holds is not None else set()

    def _let_go(self, turn: Turn) -> bool:
        """After an attempt that stored its bots: markets of this candle were left out for
        a kept hold, and one of those holds is let go now (they are stepped in one more
        attempt, on this candle)."""
        if not turn.kept or not any(self._waiting(turn, key) for key in turn.left_out):
            return False
        return bool(turn.kept - self._kept_holds())

    def _waiting(self, turn: Turn, key: tuple[str, str]) -> bool:
        market = self._markets.get(key)
        return market is not None and market.busy and not turn.settled(key, market)

    def _owed_to(self, key: tuple[str, str], market: Market, turn: Turn):
        """The candles ``market`` owes (``_owe_deferred``), or None: owed by this very
        market, or by one a refused append of this candle rebuilt it from. A market followed
        again otherwise since (another writer's change read from the log, its lease lost
        and taken again) may have had those candles stepped by someone else: they are
        dropped, one line (a candle is never walked twice)."""
        entry = self._owed.get(key)
        if entry is None:
            return None
        if entry[0] is market or turn.dropped(entry[0]):
            return entry[1]
        del self._owed[key]
        log.warning("market %s followed again from the log: the %d candles it was owed are "
                    "not stepped (OWED_CANDLES_DROPPED)", key, len(entry[1]))
        return None

    def _owe_deferred(self, turn: Turn, ts_ms: int, candle) -> None:
        """The bot steps this candle left out for a kept hold, and never made: counted,
        and the candle owed to their markets (stepped before their next one once the hold
        is let go: ``PaperTrading._step_owed``); so too the markets of a candle skipped
        after its races (their refused appends stored nothing of it). A market whose step
        is stored owes none. After ``APPEND_FAILED``, only when the log, asked after,
        holds nothing of the append (``_batch_stored``: a commit whose answer was lost
        stored the step, and a candle must not be walked twice; a log out of reach cannot
        say: the candle is not stepped again); never after a lease lost: another worker
        steps those bots now."""
        owed = self._owed
        for key in turn.stepped:
            if key in owed and turn.settled(key, self._markets.get(key)):
                del owed[key]
        waiting = [key for key in turn.left_out if self._waiting(turn, key)]
        raced = [key for key in turn.stepped if turn.skipped and key not in turn.left_out
                 and not isinstance(turn.refused, LeaseLostError)
                 and self._waiting(turn, key)]
        lost = [key for key in turn.stepped if turn.unstored and self._waiting(turn, key)]
        for key in (*waiting, *raced, *lost):
            entry = owed.get(key)
            missed = deque(maxlen=MAX_OWED) if entry is None else entry[1]
            owed[key] = (self._markets[key], missed)
            if len(missed) == MAX_OWED - 1:  # full now: one line, the oldest drop next
                log.warning("market %s has been left out of %d candles for a kept exposure "
                            "hold: from the next one the oldest are no longer stepped when "
                            "it is let go (CANDLES_DROPPED)", key, MAX_OWED)
            missed.append((ts_ms, candle))
        for key in [k for k in owed if k not in self._markets]:
            del owed[key]  # (its bots stopped, or followed elsewhere)
        if waiting:
            self.risk.holds.deferred += sum(len(self._markets[k].engines) for k in waiting)

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
        ``CANDLE_SKIPPED``, and stepped on them before their next candle (``_owed``). An
        append the store failed (``APPEND_FAILED``, said by ``_flush``) ends the candle:
        its bots go on from the log, stepping it first when the log holds nothing of it.

        A user whose exposure hold another process keeps (``EXPOSURE_HELD``, after the
        append's bounded wait) has their markets left out of the attempts while it is kept:
        the other bots' changes are appended without them, and theirs are stepped at the
        first attempt, or candle, that finds the hold let go (``exposure_holds.py``)."""
        # No cyclic collection inside a step (reference counting frees as usual): its full
        # passes walked every followed bot's state again and again while a heavy candle
        # allocated its events, ~30% of the step's processor time (bench_step.py)
        with self.lock, collector_paused():
            before, turn = self.appended, Turn()
            self._turn = turn
            try:
                for _ in range(1 + RESTEPS):
                    if turn.refused is not None:  # (a race is no fault: not a warning;
                        log.info("candle %s of %s refused (%s): stepped again from the "
                                 "log", ts_ms, pair, turn.refused)  # its code leads)
                    turn.refused, turn.kept = None, self._kept_holds()
                    try:
                        self._step_candle(pair, ts_ms, (o, h, low, c), at, turn)
                    except ConcurrencyConflictError as error:
                        turn.refused = turn.refused or error
                    except Exception:
                        if turn.failed is None:
                            raise  # (not the append's: a bug, or the log out of reach)
                        return self.appended - before  # (APPEND_FAILED said it)
                    if turn.refused is None and not self._let_go(turn):
                        return self.appended - before
                    if isinstance(turn.refused, ExposureHeldError):  # those users' bots
                        self.risk.holds.defer(turn.refused.owners, turn.refused)  # left out
                if turn.refused is None:  # (the last was a let-go round's: all stored)
                    return self.appended - before
                turn.skipped = True
                log.error("candle %s of %s skipped (CANDLE_SKIPPED): refused %d times, the "
                          "last %s; its bots go on from the log and step it before the next "
                          "candle", ts_ms, pair, 1 + RESTEPS, turn.refused)
                return self.appended - before
            finally:
                self._owe_deferred(turn, ts_ms, (o, h, low, c))
                self._turn = None
                self._entries_seen = self.lock.entries
                if self.survivors is not None:  # (before the pause ends: see paper_heap)
                    self.survivors.after_step()

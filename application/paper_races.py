"""A candle's one transaction in :class:`~application.paper_trading.PaperTrading`, and the
race with another writer: a refused append rebuilds the markets of the bots it carried from
the log (as at a restart), and the candle is stepped again on them, at most ``RESTEPS``
times, then skipped (``CANDLE_SKIPPED``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from application.collector import collector_paused
from application.paper_market import Market
from domain.bots import BotStatus
from domain.errors import ConcurrencyConflictError, LeaseLostError

log = logging.getLogger("tradetape.paper")
# A candle refused by a race is stepped again this many times at most, then skipped
RESTEPS = 3


@dataclass
class Turn:
    """A candle's attempts (``PaperTrading.on_candle``). A market is stepped once per
    candle: again only when the log does not hold its step (its append was refused and the
    market rebuilt from the log: a new object), never when its step is stored (by a flush
    before the refused one) or changed nothing (not rebuilt)."""

    stepped: dict[tuple[str, str], Market] = field(default_factory=dict)
    stored: set[tuple[str, str]] = field(default_factory=set)
    # in the attempt under way: a race, or a lease lost (LEASE_LOST, leased_paper.py)
    refused: ConcurrencyConflictError | LeaseLostError | None = None

    def settled(self, key: tuple[str, str], market: Market) -> bool:
        return key in self.stored or self.stepped.get(key) is market


class CandleRaces:
    """Mixed into PaperTrading: the candle's one transaction (``_stage``, ``_flush``) and
    what happens when another writer saved one of its bots first (``on_candle``)."""

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
        # No cyclic collection inside a step (reference counting frees as usual): its full
        # passes walked every followed bot's state again and again while a heavy candle
        # allocated its events, ~30% of the step's processor time (bench_step.py)
        with self.lock, collector_paused():
            before, turn = self.appended, Turn()
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
                if self.survivors is not None:  # (before the pause ends: see paper_heap)
                    self.survivors.after_step()

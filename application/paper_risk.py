"""The users' risk limits in :class:`~application.paper_trading.PaperTrading`'s steps: the
owners of the markets a candle reaches asked for at once, the deals a step closed counted
into their owners' day (a daily loss limit reached pauses their bots), the pauses lifted at
a new day, and the owners' exposure from the engines' own state."""

from __future__ import annotations

from uuid import UUID

from application.paper_market import Market
from application.risk_limits import logged_exposure
from domain.bots import Bot, BotStatus
from domain.errors import ConcurrencyConflictError
from domain.money import ZERO
from domain.recording import Cause
from domain.risk import Exposure


class RiskCounting:
    """Mixed into PaperTrading, whose risk limits, markets, engines and saving it uses."""

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

"""The daily loss limit: each deal that closes is counted into its UTC day (market time, so
a replayed market pauses and resumes the same way), and when the day's realized loss
reaches the user's ``maxDailyLossQuote`` every bot of theirs is paused (``Bot.RiskPaused``,
with the reason); the first step of the next day resumes them (``Bot.RiskResumed``).

Kept by the runner, under its lock, through ``RiskLimits`` (application/risk_limits.py),
which this part of it is: ``DailyLossLimit`` holds the methods, ``RiskLimits`` the state
they read (``trading``, ``risk_of``, ``_halted``: owners paused by the limit, until when;
``_elsewhere``: their paused bots a lift left to the engine workers trading them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.deals import Deal, DealStatus
from domain.errors import NotFoundError
from domain.recording import Cause, topic_of
from domain.risk import UserRisk, day_of
from domain.rosters import BotRoster, roster_id

log = logging.getLogger("tradetape.risk")
BotSource = Callable[[UUID], Bot | None]  # a bot as the runner holds it (or loaded);
# None: not the runner's to write (another engine worker trades it)
# A bot's pause by the daily loss limit and its end, as the log reads them (pause first)
_PAUSE_TOPICS = (topic_of(Bot.RiskPaused), topic_of(Bot.RiskResumed))


class DailyLossLimit:
    """The daily loss limit's part of ``RiskLimits`` (called by the runner, under its
    lock)."""

    trading: Trading
    _halted: dict[str, datetime]
    _elsewhere: dict[str, set[UUID]]

    def risk_of(self, owner_id: str) -> UserRisk | None:
        raise NotImplementedError  # (RiskLimits's)

    def resume(self) -> None:
        """After a restart: the users whose bots the daily loss limit paused, and those
        whose lift left a bot paused (``_left_paused``)."""
        owners = {n.originator_id for n in read_log(self.trading,
                                                     [topic_of(UserRisk.DailyLossReached)])}
        for owner_risk in owners:
            risk = self.trading.load(owner_risk, UserRisk)
            if risk.halted_until is not None:
                self._halted[risk.owner_id] = risk.halted_until
        for bot in self._left_paused():
            until = bot.risk_paused_until
            self._halted[bot.owner_id] = min(self._halted.get(bot.owner_id, until), until)

    def _left_paused(self) -> list[Bot]:
        """The bots the daily loss limit paused that are paused still (their last
        RiskPaused/RiskResumed is a pause, and the bot, loaded, says so). WHY: a lift
        resumes the bots its worker may write and leaves the others to the workers trading
        them, who resume them at their next step; when both died first (killed, leases
        expired), no worker knew: one started since watched only the halts not lifted,
        and the bot stayed paused for good. Watched here, its owner is due at its pause's
        end (at once, when lifted already): the step lifts what is left (``lift``), taking
        the bot when it is free, else left to the worker that holds it, started since too."""
        last: dict[UUID, str] = {}
        for n in read_log(self.trading, list(_PAUSE_TOPICS)):
            last[n.originator_id] = n.topic
        paused = [bot_id for bot_id, topic in last.items() if topic == _PAUSE_TOPICS[0]]
        bots = self.trading.load_many(paused, Bot) if paused else {}
        return [bot for bot in bots.values() if bot.status is BotStatus.PAUSED
                and getattr(bot, "risk_paused_until", None) is not None]

    def counts_losses(self, owner_id: str) -> bool:
        """True when the owner has a daily loss limit (their closed deals are counted)."""
        risk = self.risk_of(owner_id)
        return risk is not None and risk.limits.max_daily_loss_quote is not None

    def count_closed(self, deals: Iterable[Deal], cause: Cause, bot_of: BotSource) -> list:
        """Deals closed in this step: counted into their owner's day where a daily loss
        limit is set. Returns the aggregates to save in one transaction (the UserRisks, and
        the bots a limit reached pauses, as ``bot_of`` gives them: the runner's own copy of
        a bot it is stepping)."""
        by_owner: dict[str, list[Deal]] = {}
        for deal in deals:
            if deal.status is DealStatus.CLOSED and deal.realized_pnl is not None:
                by_owner.setdefault(deal.owner_id, []).append(deal)
        changed: list = []
        for owner_id, closed in by_owner.items():
            risk = self.risk_of(owner_id)
            if risk is None or risk.limits.max_daily_loss_quote is None:
                continue
            reached = False
            for deal in closed:
                reached = risk.count_result(cause, deal.id, deal.realized_pnl) or reached
            changed.append(risk)
            if reached:
                changed += self._pause_all(risk, cause, bot_of)
        return changed

    def _pause_all(self, risk: UserRisk, cause: Cause, bot_of: BotSource) -> list[Bot]:
        reason = (f"daily loss limit reached: {risk.day_loss} lost on {risk.day} (UTC), the "
                  f"limit is {risk.limits.max_daily_loss_quote}")
        log.warning("user %s: %s; bots paused until %s", risk.owner_id, reason,
                    risk.halted_until.isoformat())
        bots = [bot for bot_id in self._bots_of(risk.owner_id)
                if (bot := bot_of(bot_id)) is not None]
        for bot in bots:
            bot.risk_pause(cause, reason, risk.halted_until)
        return bots

    def saved(self, aggregates: Iterable) -> None:
        """The runner stored what ``count_closed`` or ``lift`` returned: the owners whose
        UserRisk it holds are watched for their lift (``due``) while paused, no longer once
        lifted. Only after the save: a refused one leaves the runner's mark as the log
        has it (a pause marked but never stored, a lift unmarked but never stored and the
        bots paused for good)."""
        for risk in aggregates:
            if not isinstance(risk, UserRisk):
                continue
            if risk.halted_until is not None:
                self._halted[risk.owner_id] = risk.halted_until
            elif not self._elsewhere.get(risk.owner_id):
                self._halted.pop(risk.owner_id, None)
                self._elsewhere.pop(risk.owner_id, None)
            # else lifted, some bots left to the workers that trade them: due still, so
            # that the next step looks again (see ``lift``)

    def due(self, at: datetime) -> list[str]:
        """The owners whose pause ends by ``at``."""
        return [owner for owner, until in self._halted.items() if at >= until]

    def lift(self, owner_id: str, cause: Cause, bot_of: BotSource) -> list:
        """A new day: the owner's UserRisk lifted, and each bot the limit paused (its pause
        ended by ``cause.at``) that this runner may write, as ``bot_of`` gives it, runs
        again. Not saved: the runner saves them in one transaction as it saves its other
        writes (fenced on an engine worker: one that lost a bot's lease writes nothing),
        then says so (``saved``).

        A bot another engine worker trades (``bot_of`` gives None) is left to it: that
        worker sees the lift in the log and resumes the bot at its next step (``forget``,
        ``watch``). WHY: the lift used to wait, all of it, until every paused bot was free,
        so one bot held elsewhere (its deal open) kept the user halted, all their bots
        paused, for as long as that deal lasted. The owner stays due here while a bot left
        so is still paused in the log, and is looked at again at each step (taken here
        once free: its worker may have died before it resumed it)."""
        risk = self.risk_of(owner_id)
        if risk is None:
            self._halted.pop(owner_id, None)  # (nothing of the owner's is stored)
            return []
        risk.lift_if_due(cause)  # else lifted elsewhere, or paused again: as the log has it
        # Only the bots the limit paused: the others have nothing to write, no lease to take
        paused = [bot_id for bot_id in self._bots_of(owner_id)
                  if _pause_ended(self.trading.get_bot(bot_id), cause.at)]
        resumed, elsewhere = [], set()
        for bot_id in paused:
            bot = bot_of(bot_id)  # the runner's own copy, or None: not its to write
            if bot is None:
                elsewhere.add(bot_id)
                continue
            bot.risk_resume(cause, f"a new day ({day_of(cause.at)}, UTC): the daily loss "
                                   "limit counts from 0 again")
            resumed.append(bot)
        if elsewhere and elsewhere != self._elsewhere.get(owner_id):  # (once, not per step)
            log.info("user %s: the daily loss limit lifted; %d paused bots are resumed by "
                     "the engine workers that trade them", owner_id, len(elsewhere))
        self._elsewhere[owner_id] = elsewhere
        return [risk, *resumed]

    def _bots_of(self, owner_id: str) -> list[UUID]:
        """The owner's bots that are not stopped (their roster)."""
        try:
            roster = self.trading.load(roster_id(owner_id), BotRoster)
        except NotFoundError:
            return []
        return [UUID(bot_id) for bot_id in roster.bots]


def _pause_ended(bot: Bot, at: datetime) -> bool:
    """``bot`` is paused by the daily loss limit, and its pause ends by ``at``."""
    until = getattr(bot, "risk_paused_until", None)
    return until is not None and at >= until and bot.status is BotStatus.PAUSED

"""The bots' part of an emergency exit (see ``application.emergency_exit``): every bot of
the owner stopped, its resting orders cancelled and its open deal sold at market (reason
``emergency_exit``), on every account it trades, all under the exit's cause."""

from __future__ import annotations

from uuid import UUID

from application.emergency_exit import ExitTally
from application.paper_trading import PaperTrading
from application.trading import Trading
from application.user_views import bot_owners
from domain.bots import BotStatus
from domain.deals import CloseReason
from domain.errors import DomainError
from domain.recording import Cause


class BotsExit:
    def __init__(self, trading: Trading, paper: PaperTrading):
        self.trading, self.paper = trading, paper
        # every owner's bots, read once per exit (a system-wide exit asks for each owner)
        self._bots: tuple[str, dict[str, list[UUID]]] | None = None

    def exit_all(self, owner_id: UUID, cause: Cause) -> ExitTally:
        tally = ExitTally()
        for bot_id in self._bots_of(str(owner_id), cause.correlation_id):
            with self.paper.lock:
                self._exit_bot(bot_id, cause, tally)
        return tally

    def _bots_of(self, owner: str, correlation_id: str) -> list[UUID]:
        if self._bots is None or self._bots[0] != correlation_id:
            by_owner: dict[str, list[UUID]] = {}
            for bot_id, bot_owner in bot_owners(self.trading):
                by_owner.setdefault(bot_owner, []).append(bot_id)
            self._bots = (correlation_id, by_owner)
        return self._bots[1].get(owner, [])

    def _exit_bot(self, bot_id: UUID, cause: Cause, tally: ExitTally) -> None:
        bot = self.trading.get_bot(bot_id)
        if bot.open_deal_id is not None:
            self._sell_deal(bot_id, cause, tally)
        if self.trading.get_bot(bot_id).status is not BotStatus.STOPPED:
            from application.bot_roster import stop_and_release

            stop_and_release(self.trading, bot_id, cause)
            tally.bots_stopped += 1

    def _sell_deal(self, bot_id: UUID, cause: Cause, tally: ExitTally) -> None:
        """Sell at market (which cancels the deal's resting orders); when the venue refuses,
        its resting orders are cancelled all the same and the refusal is reported."""
        try:
            self.paper.follow(bot_id)
            engine = self.paper.engine_of(bot_id)
            resting = engine.resting_orders() if engine is not None else 0
            self.paper.close_deal(bot_id, CloseReason.EMERGENCY_EXIT, actor=cause.actor,
                                  correlation_id=cause.correlation_id)
            tally.deals_closed += 1
            tally.orders_cancelled += resting
        except DomainError as error:
            tally.orders_cancelled += self.paper.cancel_open_orders(bot_id, cause)
            tally.problems.append(f"bot {bot_id}: {error.code}: {error.message}")

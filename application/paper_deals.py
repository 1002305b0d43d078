"""Deals opened and closed now, outside a candle's step (a webhook's signal, an emergency
exit), for :class:`~application.paper_trading.PaperTrading`: each decided by the bot's
engine under the runner's lock and saved in one transaction, with what the caller saves
beside it (``AlsoSaved``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.paper_market import closed_deals
from domain.bots import BotStatus
from domain.deals import CloseReason
from domain.errors import DomainError, InvalidTransitionError
from domain.orders import Order, OrderStatus
from domain.recording import SYSTEM, Cause

if TYPE_CHECKING:
    from application.engine import DcaEngine

# (deal id, done) -> aggregates whose new events are saved in the same transaction as the
# deal's (a webhook recording what its signal did): ``done`` False when the venue refused.
AlsoSaved = Callable[[UUID | None, bool], Iterable[Any]]


class DealsNow:
    """Mixed into PaperTrading, whose lock, markets, engines and saving it uses."""

    def start_deal(self, bot_id: UUID, actor: str = SYSTEM,
                   correlation_id: str | None = None, also: AlsoSaved | None = None) -> UUID:
        """Open a deal for ``bot_id`` now (a start_deal signal), its base order bought at
        the venue's last price: the id of the deal. ``NO_PRICE_YET`` before the market's
        first candle, ``DEAL_ALREADY_OPEN``/``BOT_NOT_RUNNING``/``BOT_COOLING_DOWN`` as
        the engine says, or the bot's error when the base order was refused. ``also``: see
        :data:`AlsoSaved`."""
        with self.lock:
            if self.trading.is_halted():
                raise DomainError("trading is halted (emergency stop)", code="TRADING_HALTED")
            self.follow(bot_id)  # a no-op for a bot this runner already trades
            market, engine = self._engine_of(bot_id)
            price = getattr(market.venue, "price", None)
            if price is None:
                raise DomainError("the market has no price yet: try after the next candle",
                                  code="NO_PRICE_YET")
            engine.bot = self.trading.get_bot(bot_id)
            engine.begin_step(self.trading.cause(actor, correlation_id))
            engine.open_deal_now(price)
            deal = engine.deal
            self._append_or_reload(bot_id, [
                *engine.take_changes(),
                *(also(deal.id if deal else None, deal is not None) if also else ())])
            if deal is None:
                raise DomainError(f"the base order was refused: {engine.bot.error_reason}",
                                  code="BASE_ORDER_REFUSED")
            return deal.id


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
                    closed_deals(changes), engine.cause,
                    lambda other: bot if other == bot_id else self._bot_of(other))
            events = sum(len(a.pending_events) for a in changes)
            if self._append_or_reload(
                    bot_id, [*changes, *(also(deal_id, engine.deal is None) if also else ())]
            ) >= events and self.risk is not None:
                self.risk.saved(changes)  # a pause it made watched for its lift, once stored
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

    def _append_or_reload(self, bot_id: UUID, aggregates) -> int:
        """``_append``; when another writer saved first (``also``'s aggregates: a signal
        another process took), what this runner holds for the bot's market is rebuilt
        from the log, as at a restart, and the conflict raised."""
        return self._save_now(aggregates, (bot_id,))  # (which rebuilds on a conflict)

    def engine_of(self, bot_id: UUID) -> DcaEngine | None:
        """The engine trading ``bot_id`` here, if any; call with ``lock`` held."""
        return self._engine_of(bot_id)[1]

    def cancel_open_orders(self, bot_id: UUID, cause: Cause) -> int:
        """Cancel every order of the bot resting on its venue (an exit whose sell was
        refused leaves none behind): how many were asked to cancel."""
        with self.lock:
            engine = self.engine_of(bot_id)
            if engine is None:
                return 0
            engine.begin_step(cause)
            cancelled = engine.cancel_resting_orders()
            self._save_now(engine.take_changes(), (bot_id,))
            return cancelled

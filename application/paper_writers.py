"""What other writers changed, seen by :class:`~application.paper_trading.PaperTrading`
before each candle: a bot changed by a command, the risk limits or another process (its
engine's copy loaded again), a user's limits set elsewhere, and the trading switch."""

from __future__ import annotations

from functools import cache
from uuid import UUID

from application.engine import DcaEngine
from application.replay import read_log
from domain.bots import Bot, BotStatus
from domain.recording import topic_of
from domain.risk import UserRisk


class OtherWriters:
    """Mixed into PaperTrading, whose log position, markets and engines it uses."""

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

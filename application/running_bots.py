"""The bots that need an engine (running, or holding an open deal), kept current from the
log: the first call reads every bot, later calls only the bots with new events since."""

from __future__ import annotations

import threading
from uuid import UUID

from application.leases import Candidate
from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.errors import NotFoundError
from domain.recording import topic_of

BOT_TOPICS = sorted({topic_of(kind) for kind in vars(Bot).values()
                     if isinstance(kind, type) and issubclass(kind, Bot.Event)})


class RunningBots:
    def __init__(self, trading: Trading):
        self.trading = trading
        self.position = 0
        self.bots: dict[UUID, Candidate] = {}
        self._lock = threading.Lock()

    def __call__(self) -> list[Candidate]:
        with self._lock:
            changed = set()
            for note in read_log(self.trading, BOT_TOPICS, first=self.position + 1):
                changed.add(note.originator_id)
                self.position = note.id
            for bot_id in changed:
                self._decide(bot_id)
            return list(self.bots.values())

    def _decide(self, bot_id: UUID) -> None:
        try:
            bot = self.trading.get_bot(bot_id)
        except NotFoundError:
            self.bots.pop(bot_id, None)
            return
        if bot.status is BotStatus.RUNNING or bot.open_deal_id is not None:
            close = (bot.close_reason, bot.close_actor) if bot.close_pending else None
            self.bots[bot_id] = Candidate(bot_id, bot.exchange_account_id,
                                          bot.open_deal_id is not None, close)
        else:
            self.bots.pop(bot_id, None)

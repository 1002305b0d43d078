"""The stopped bots of a user that still hold an open deal, found from the log.

WHY: a bot stopped without closing its deal leaves its owner's roster (its slot and name
are free again) while the deal runs on to its take profit or stop loss, still holding the
money it spent and its resting safety orders. A position judged in a process that does not
trade the user's bots counted the deals of the roster's bots only
(``RiskLimits._logged``): a stopped bot's deal was not counted against
``maxExposureQuote``, and the limit could be passed by as much as that deal commits.

A stopped bot never runs again (``domain/bots.py``: no transition leaves STOPPED) and opens
no deal: once seen stopped with no open deal, it is never loaded again here. So a check
loads the owner's stopped bots whose deal was open at the last look, and those stopped
since; the log is read on from the last position seen (``Bot.Created`` only: who owns
which bot).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from uuid import UUID

from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.recording import topic_of


class StoppedDeals:
    def __init__(self, trading: Trading):
        self.trading = trading
        self._next = 1  # the log position to read from
        self._bots: dict[str, list[UUID]] = {}  # owner -> their bots, oldest first
        self._done: set[UUID] = set()  # stopped with no open deal: for good
        self._lock = threading.Lock()
        self._topics = [topic_of(Bot.Created)]

    def holding(self, owner_id: str, roster: Iterable[UUID]) -> list[UUID]:
        """The bots of ``owner_id`` outside ``roster`` (their bots not stopped) that are
        stopped and hold an open deal, as the log has them now."""
        with self._lock:
            self._catch_up()
            listed = set(roster)
            looked = [b for b in self._bots.get(owner_id, ())
                      if b not in listed and b not in self._done]
            if not looked:
                return []
            bots = self.trading.load_many(looked, Bot)
            holding = []
            for bot_id in looked:
                bot = bots.get(bot_id)
                if bot is None or bot.status is not BotStatus.STOPPED:
                    continue  # (not stopped: in the roster, or enrolled since)
                if bot.open_deal_id is None:
                    self._done.add(bot_id)
                else:
                    holding.append(bot_id)
            return holding

    def _catch_up(self) -> None:
        for notification in read_log(self.trading, self._topics, first=self._next):
            self._next = notification.id + 1
            created = self.trading.mapper.to_domain_event(notification)
            self._bots.setdefault(created.owner_id, []).append(notification.originator_id)

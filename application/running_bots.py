"""The bots that need an engine (running, or holding an open deal), kept current from the
log: the first call reads them all, later calls only the bots with new events since.

The first call takes the bots to look at from a restart book when one is given (the
``paper_book`` projection, as of the log's head: projections/paper_book.py) instead of
reading every bot event of the log, and loads them together (``Trading.load_many``): a
start costs what runs, not what the log holds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import UUID

from application.lease_shares import Candidate
from application.paper_log import RestartBook
from application.replay import read_log
from application.trading import Trading
from domain.bots import Bot, BotStatus
from domain.recording import topic_of

log = logging.getLogger("tradetape.leases")
BOT_TOPICS = sorted({topic_of(kind) for kind in vars(Bot).values()
                     if isinstance(kind, type) and issubclass(kind, Bot.Event)})
# The events of a deal cycle, by what each leaves of a bot's candidate: whether it holds an
# open deal. Neither changes its status, account or owner, and either ends a pending close
# (a close asks for the open deal: finished, or another one opened). A bot whose new events
# are only these is not loaded again (the lease tick loaded every bot of a take-profit wave
# each quarter lease: 2,600 at 10,000 bots, most of the tick's processor time).
DEAL_CYCLE = {topic_of(Bot.DealStarted): True, topic_of(Bot.DealFinished): False}


class RunningBots:
    def __init__(self, trading: Trading,
                 restart_book: Callable[[], RestartBook | None] | None = None):
        self.trading = trading
        self.restart_book = restart_book
        self.position = 0
        self._read = False  # the first call made (later ones read only what is new)
        self.bots: dict[UUID, Candidate] = {}
        self._loaded: dict[UUID, Bot] = {}  # the bots the last call loaded
        # bot -> (running, account, owner) as last loaded: what a deal cycle leaves alone
        self._known: dict[UUID, tuple[bool, str, str]] = {}
        # bot -> owner of the bots this code cannot read (an event of a newer version):
        # shared with the risk limits (``RiskLimits.unreadable``) by the composition root
        self.unreadable: dict[UUID, str] = {}
        self._lock = threading.Lock()

    def __call__(self) -> list[Candidate]:
        with self._lock:
            changed: dict[UUID, None] = {}
            book = (self.restart_book() if not self._read and self.restart_book is not None
                    else None)
            self._read = True
            if book is not None:  # everything up to its position; what runs is in it
                changed = dict.fromkeys(book.bots)
                self.position = book.position
            deals: dict[UUID, bool] = {}  # bot -> holds a deal, after its new events
            for note in read_log(self.trading, BOT_TOPICS, first=self.position + 1):
                self.position = note.id
                bot_id = note.originator_id
                if bot_id in changed:
                    continue
                deal = DEAL_CYCLE.get(note.topic)
                if deal is None or bot_id not in self._known:
                    changed[bot_id] = None
                    deals.pop(bot_id, None)
                else:
                    deals[bot_id] = deal
            self._decide(list(changed))
            for bot_id, deal in deals.items():
                self._cycled(bot_id, deal)
            return list(self.bots.values())

    def take_loaded(self) -> dict[UUID, Bot]:
        """The bots the last call loaded (once: they age), so that following them does
        not load them again."""
        with self._lock:
            loaded, self._loaded = self._loaded, {}
            return loaded

    def _decide(self, bot_ids: list[UUID]) -> None:
        bots, unreadable = load_readable(self.trading, bot_ids)
        self._loaded = bots
        for bot_id in bot_ids:
            self.unreadable.pop(bot_id, None)
        self.unreadable.update(unreadable)
        for bot_id in bot_ids:
            bot = bots.get(bot_id)
            if bot is None:
                self._known.pop(bot_id, None)
            else:
                self._known[bot_id] = (bot.status is BotStatus.RUNNING,
                                       bot.exchange_account_id, bot.owner_id)
            if bot is not None and (bot.status is BotStatus.RUNNING
                                    or bot.open_deal_id is not None):
                close = (bot.close_reason, bot.close_actor) if bot.close_pending else None
                self.bots[bot_id] = Candidate(bot_id, bot.exchange_account_id,
                                              bot.open_deal_id is not None, close,
                                              owner=bot.owner_id)
            else:
                self.bots.pop(bot_id, None)

    def _cycled(self, bot_id: UUID, deal: bool) -> None:
        """A known bot whose new events are only deal starts and finishes: its candidate
        as loading it would make it (a close pending is no longer: see ``DEAL_CYCLE``)."""
        running, account, owner = self._known[bot_id]
        if running or deal:
            self.bots[bot_id] = Candidate(bot_id, account, deal, None, owner=owner)
        else:
            self.bots.pop(bot_id, None)


def load_readable(trading: Trading, bot_ids: list[UUID]) -> tuple[dict[UUID, Bot], dict[UUID, str]]:
    """The bots of ``bot_ids`` loaded together, and those this code cannot read (an event
    of a newer version), each with its owner (from its first event; "" when even that
    cannot be read). WHY: one such bot failed the load of them all, and with it every
    engine worker's lease tick (no user's bot traded) or a process's start."""
    from application.lease_shares import transient

    try:
        return trading.load_many(bot_ids, Bot), {}
    except Exception as error:
        if transient(error):
            raise
    found: dict[UUID, Bot] = {}
    unreadable: dict[UUID, str] = {}
    for bot_id in bot_ids:
        try:
            found.update(trading.load_many([bot_id], Bot))
        except Exception as error:
            if transient(error):
                raise
            unreadable[bot_id] = _owner_of(trading, bot_id)
            log.error("bot %s (of %s) cannot be read by this version of the engine "
                      "(BOT_NOT_LOADABLE): %s: %s; not traded", bot_id,
                      unreadable[bot_id] or "an unknown owner", type(error).__name__, error)
    return found, unreadable


def _owner_of(trading: Trading, bot_id: UUID) -> str:
    try:
        [first] = trading.recorder.select_events(bot_id, lte=1)
        return trading.mapper.to_domain_event(first).owner_id
    except Exception:
        return ""

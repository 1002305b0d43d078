"""Paper trading in a process that shares the database with other engine workers
(``serve --role engine|all`` on PostgreSQL), and in one that trades nothing (``--role api``).

- :class:`LeasedPaperTrading` trades only the bots whose lease it holds
  (``application/leases.py``): each append is fenced with their tokens, checked by the event
  store in the same transaction; a refused append (``LEASE_LOST``) writes nothing and drops
  the bots it was for. A command given here for a bot no worker holds (a bot just started)
  takes its lease at once when it is free; one held by another worker is left to it (it
  learns of the command from the log, woken by NOTIFY).
- :class:`ApiPaperTrading` follows nothing: commands are recorded in the log and the
  engine worker that owns the bot acts on them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from uuid import UUID

from application.lease_fence import Fence, fenced
from application.leases import LeaseManager
from application.paper_trading import PaperTrading
from application.risk_limits import logged_exposure
from domain.bots import Bot
from domain.deals import CloseReason, DealStatus
from domain.errors import DomainError, InvalidTransitionError, LeaseLostError
from domain.recording import SYSTEM
from domain.risk import Exposure

log = logging.getLogger("tradetape.leases")
CLOSE_WAIT_SECONDS = 15.0  # how long a command waits for the engine worker to sell


def bots_of(aggregates: Iterable, bot_ids: Iterable[UUID] = ()) -> set[UUID]:
    """The bots an append is for: those named, and those its aggregates belong to."""
    found = set(bot_ids)
    for aggregate in aggregates:
        if isinstance(aggregate, Bot):
            found.add(aggregate.id)
        elif (bot_id := getattr(aggregate, "bot_id", None)) is not None:
            found.add(bot_id)
    return found


def owners_of(aggregates: Iterable) -> set[str]:
    return {o for a in aggregates if (o := getattr(a, "owner_id", None))}


class LeasedPaperTrading(PaperTrading):
    leases: LeaseManager | None = None  # set by the composition root before start

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.risk is not None:  # a user's count limits judged only where all their
            self.risk.judge = self._judges  # bots are held (``LeaseManager.judges``)
            self.risk.add_exposure(self._unloaded_exposure)  # or those not, as the log says
            self.risk.untraded = self._untraded

    def _judges(self, owner_id: str) -> bool:
        return self.leases is None or self.leases.judges(owner_id)

    def _unloaded_exposure(self, owner_id: str) -> Exposure:
        """The owner's bots this worker could not load (no worker trades them): what their
        events say they hold (``LeaseManager.unloadable``)."""
        bot_ids = self.leases.unloadable(owner_id) if self.leases is not None else []
        if not bot_ids:
            return Exposure()
        return logged_exposure(self.trading, bot_ids)

    def _untraded(self, owner_id: str, bot_ids: list[UUID]) -> list[UUID]:
        """Those of ``bot_ids`` neither traded here nor counted as unloaded already."""
        unloaded = set(self.leases.unloadable(owner_id)) if self.leases is not None else ()
        return [b for b in bot_ids if self._engine_of(b)[1] is None and b not in unloaded]

    def owner_of(self, bot_id: UUID) -> str | None:
        engine = self._engine_of(bot_id)[1]
        return engine.bot.owner_id if engine is not None else None

    def _append(self, aggregates, bot_ids=()) -> int:
        aggregates = list(aggregates)
        fence, bots = self._fence_of(aggregates, bot_ids)
        try:
            with fenced(fence):
                return super()._append(aggregates, bot_ids)
        except LeaseLostError as error:  # nothing written: the lost bots are dropped
            self._lease_lost(error, bots)
            return 0

    def _fence_of(self, aggregates: list, bot_ids) -> tuple[Fence | None, set]:
        """The fence of an append of ``aggregates`` (the steps of ``bot_ids``), and the
        bots whose leases it checks."""
        stamps = self._stamps(aggregates)
        if self.leases is None:
            return (Fence("", {}, stamps) if stamps else None), set()
        bots = bots_of(aggregates, bot_ids)
        if self.risk is not None and self.risk.judged:  # a buy judged on the figures of
            # every bot of its owner held here: each of their leases is checked with it
            bots |= self.leases.companions(owners_of(aggregates) & self.risk.judged)
        fence = self.leases.fence(bots) if bots else None
        if stamps:  # buys judged on their owners' exposure stamps: refused if one moved on
            fence = replace(fence or self.leases.fence(()), stamps=stamps)
        return fence, bots

    def _lease_lost(self, error: LeaseLostError, bots, also=()) -> None:
        """An append refused for a lease lost: the lost bots dropped. The refused append
        held the step of every bot in it (and of ``also``: those decided after it, an
        append sent ahead's): those still held here decide again from the log, as at a
        restart (kept in memory, their next append would skip the versions never
        stored)."""
        if self.leases is None:
            raise error
        log.warning("%s", error)
        self.leases.lost(error.bot_ids or bots)
        self._rebuild_markets(set(bots) | set(also))
        if self._turn is not None:  # a candle's: stepped again on the rebuilt markets,
            self._turn.refused = error  # else the bots still held here missed it

    def _stamps(self, aggregates: list) -> dict[str, int]:
        """The exposure stamps the buys of this append were judged on (by owner)."""
        holds = self.risk.holds if self.risk is not None else None
        return holds.take(owners_of(aggregates)) if holds is not None else {}

    def _bot_of(self, bot_id: UUID) -> Bot | None:
        """None for a bot another worker trades: a limit's pause is not written for it here
        (the append would be refused whole, the count with it; the limit reached refuses
        its buys where it trades)."""
        if self.leases is not None and not self.leases.holds(bot_id):
            return None
        return super()._bot_of(bot_id)

    def _resumable(self, bot_id: UUID) -> Bot | None:
        """A bot a new day resumes: one this worker holds, or takes now (a bot paused
        without an open deal is no worker's); None while another worker trades it."""
        if self.leases is not None and not (self.leases.holds(bot_id)
                                            or self.leases.claim(bot_id)):
            return None
        return super()._bot_of(bot_id)

    def follow(self, bot_id: UUID) -> None:
        if self.leases is None or self.leases.holds(bot_id):
            super().follow(bot_id)
        else:
            self.leases.claim(bot_id)

    def follow_many(self, bot_ids: Iterable[UUID],
                    loaded: dict[UUID, Bot] | None = None) -> dict[UUID, Exception]:
        """Those of ``bot_ids`` this worker holds, loaded together; the others as
        ``follow`` takes them (one at a time: a lease is claimed each)."""
        bot_ids = list(bot_ids)
        if self.leases is None:
            return super().follow_many(bot_ids, loaded)
        held = [b for b in bot_ids if self.leases.holds(b)]
        for bot_id in set(bot_ids).difference(held):
            self.leases.claim(bot_id)
        return super().follow_many(held, loaded)

    def start_deal(self, bot_id: UUID, actor: str = SYSTEM,
                   correlation_id: str | None = None, also=None) -> UUID:
        with self.lock:
            if self.leases is not None and not (self.leases.holds(bot_id)
                                                or self.leases.claim(bot_id)):
                raise elsewhere()
            return super().start_deal(bot_id, actor, correlation_id, also)

    def close_deal(self, bot_id: UUID, reason: CloseReason = CloseReason.MANUAL,
                   actor: str = SYSTEM, correlation_id: str | None = None,
                   also=None) -> UUID:
        """Here when this worker holds the bot (or takes it now); else asked of the one
        that does, through the log."""
        with self.lock:
            if self.leases is None or self.leases.holds(bot_id) or self.leases.claim(bot_id):
                return super().close_deal(bot_id, reason, actor, correlation_id, also)
        return request_close(self, bot_id, reason, actor, correlation_id, also)


class ApiPaperTrading(PaperTrading):
    """Trades nothing: ``--role api``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.risk is not None:  # a position opened here counts every deal of its
            self.risk.untraded = lambda owner_id, bot_ids: bot_ids  # owner's from the log

    def resume(self) -> list[UUID]:
        return []

    def _lift_daily_pauses(self, cause) -> None:
        """The engine workers lift a user's daily loss halt and resume the bots, fenced by
        their leases: this process holds none (it reads the halt in the log as they do)."""

    def follow(self, bot_id: UUID) -> None:
        """The engine worker that takes the bot's lease trades it (woken by NOTIFY)."""

    def follow_many(self, bot_ids: Iterable[UUID],
                    loaded: dict[UUID, Bot] | None = None) -> dict[UUID, Exception]:
        return {}

    def close_deal(self, bot_id: UUID, reason: CloseReason = CloseReason.MANUAL,
                   actor: str = SYSTEM, correlation_id: str | None = None,
                   also=None) -> UUID:
        return request_close(self, bot_id, reason, actor, correlation_id, also)

    def start_deal(self, bot_id: UUID, actor: str = SYSTEM,
                   correlation_id: str | None = None, also=None) -> UUID:
        raise elsewhere()


def elsewhere() -> DomainError:
    """A deal opened now (a webhook's signal) must be decided by the bot's engine, here."""
    return DomainError("this bot is traded by another engine worker: send the signal to a "
                       "server running the engine that holds it", code="ENGINE_ELSEWHERE")


def request_close(paper: PaperTrading, bot_id: UUID, reason: CloseReason, actor: str,
                  correlation_id: str | None, also) -> UUID:
    """Record ``Bot.DealCloseRequested`` (the engine worker holding the bot is woken by
    NOTIFY and sells at market), then wait until the deal is closed: its id.
    ``CLOSE_PENDING`` when it is not within ``CLOSE_WAIT_SECONDS`` (it still will be)."""
    if also is not None:  # what a webhook saves beside the deal cannot cross processes
        raise elsewhere()
    trading = paper.trading
    deal_id = trading.get_bot(bot_id).open_deal_id
    if deal_id is None:
        raise InvalidTransitionError("the bot has no open deal to close", code="DEAL_NOT_OPEN")
    trading.request_deal_close(bot_id, deal_id, str(reason), actor, correlation_id)
    waited = 0.0
    while waited < CLOSE_WAIT_SECONDS:
        if trading.get_deal(deal_id).status is not DealStatus.OPEN:
            return deal_id
        time.sleep(0.05)
        waited += 0.05
    raise DomainError("the engine worker trading this bot has not sold the deal yet; it "
                      "will at its next chance", code="CLOSE_PENDING")

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
from collections.abc import Iterable
from uuid import UUID

from application.leases import LeaseLostError, LeaseManager, fenced
from application.paper_trading import PaperTrading
from domain.bots import Bot

log = logging.getLogger("tradetape.leases")


def bots_of(aggregates: Iterable, bot_ids: Iterable[UUID] = ()) -> set[UUID]:
    """The bots an append is for: those named, and those its aggregates belong to."""
    found = set(bot_ids)
    for aggregate in aggregates:
        if isinstance(aggregate, Bot):
            found.add(aggregate.id)
        elif (bot_id := getattr(aggregate, "bot_id", None)) is not None:
            found.add(bot_id)
    return found


class LeasedPaperTrading(PaperTrading):
    leases: LeaseManager | None = None  # set by the composition root before start

    def _append(self, aggregates, bot_ids=()) -> int:
        aggregates = list(aggregates)
        if self.leases is None:
            return super()._append(aggregates, bot_ids)
        bots = bots_of(aggregates, bot_ids)
        try:
            with fenced(self.leases.fence(bots) if bots else None):
                return super()._append(aggregates, bot_ids)
        except LeaseLostError as error:  # nothing written: the bots are dropped
            log.warning("%s", error)
            self.leases.lost(error.bot_ids or bots)
            return 0

    def follow(self, bot_id: UUID) -> None:
        if self.leases is None or self.leases.holds(bot_id):
            super().follow(bot_id)
        else:
            self.leases.claim(bot_id)


class ApiPaperTrading(PaperTrading):
    """Trades nothing: ``--role api``."""

    def resume(self) -> list[UUID]:
        return []

    def follow(self, bot_id: UUID) -> None:
        """The engine worker that takes the bot's lease trades it (woken by NOTIFY)."""

"""An engine worker's share of the bots (``LeaseManager``'s ticks, ``application/leases.py``):
a dead worker's bots adopted at once, then about ``ceil(bots / live workers)`` each, taken
and given up a whole user at a time (their risk limits count all their bots, on every
account; an account's bots share a paper wallet and one owner); a user split between
workers for a while (adopted in parts, a lease let lapse) comes together again on the
worker that holds most of their bots; a bot leased but not followed is let go at once, for
a later tick to take again."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError

from domain.errors import LeaseLostError

log = logging.getLogger("tradetape.leases")


@dataclass(frozen=True)
class Candidate:
    """A bot that needs an engine, the account whose wallet it shares, and its owner."""

    bot_id: UUID
    account: str
    open_deal: bool = False  # orders another worker placed may rest for it
    close: tuple[str, str] | None = None  # (reason, actor) of a close asked elsewhere
    owner: str = ""  # (none given: its account stands for it)

    @property
    def group(self) -> str:
        """What moves between workers together: the owner's bots (else the account's)."""
        return f"owner:{self.owner}" if self.owner else f"account:{self.account}"


class Shares:
    """Mixed into LeaseManager, whose store, follower and held leases it uses (called with
    the follower's lock and the manager's held)."""

    def _adopt(self, candidates: dict[UUID, Candidate], loaded: dict[UUID, Any]) -> bool:
        """A dead worker's bots trade again at once, here: the shares even out later.
        Whether any was taken."""
        orphans = self.store.orphans([b for b in candidates if b not in self.held])
        if not orphans:
            return False
        taken = self.store.acquire(sorted(orphans), self.seconds)
        self._follow(taken, refresh=True, loaded=loaded)
        return bool(taken)

    def _unsplit(self, candidates: dict[UUID, Candidate], loaded: dict[UUID, Any]) -> None:
        """Users whose bots are held here and by another live worker (adopted in parts, a
        lease that lapsed): the worker holding most of them (the same count: the first by
        name) keeps them and takes the rest as they come free; the others let theirs go.
        Until then neither opens a deal that their count limits judge (``judges``)."""
        held = self.held
        rest = [c for c in candidates.values() if c.bot_id not in held]
        if rest:  # (one worker holding every bot: none; else only the users held here)
            ours = {candidates[b].group for b in held if b in candidates}
            rest = [c for c in rest if c.group in ours]
        if not rest:  # (the usual case: every user held here is held whole)
            return
        # WHY in this order: grouped and sorted at every tick, 10,000 held bots cost a
        # quarter of an idle tick's processor time, for a usual answer of none
        groups = _by_group(candidates[b] for b in held if b in candidates)
        holders = self.store.holders([c.bot_id for c in rest])
        elsewhere: dict[str, dict[str, int]] = {}
        for c in rest:
            if (holder := holders.get(c.bot_id)) not in (None, self.worker):
                counts = elsewhere.setdefault(c.group, {})
                counts[holder] = counts.get(holder, 0) + 1
        given, free = [], []
        for group, bots in groups.items():
            ours = (-len(bots), self.worker)
            if any((-n, w) < ours for w, n in elsewhere.get(group, {}).items()):
                given += bots
            else:
                free += [c.bot_id for c in rest if c.group == group
                         and holders.get(c.bot_id) is None]
        if given:
            log.info("%d bot(s) of users split between workers let go to the worker "
                     "holding most of theirs", len(given))
            self._release(given)
        if free:
            taken = self.store.acquire(sorted(free), self.seconds)
            self._follow(taken, refresh=any(candidates[b].open_deal for b in taken),
                         loaded=loaded)

    def _release(self, bot_ids: list[UUID]) -> None:
        if not bot_ids:
            return
        for bot_id in bot_ids:  # stop writing first, then let go
            self.paper.unfollow(bot_id, release=True)
            self.held.pop(bot_id, None)
        self.store.release(bot_ids)

    def _excess(self, candidates: dict[UUID, Candidate], count: int) -> list[UUID]:
        """Whole users, smallest first, as long as they add up to at most ``count``
        bots (a user bigger than the excess stays: shares are about even, not exact)."""
        groups = _by_group(candidates[b] for b in self.held if b in candidates)
        chosen: list[UUID] = []
        for _, bots in sorted(groups.items(), key=lambda item: (len(item[1]), item[0])):
            if len(chosen) + len(bots) <= count:
                chosen += bots
        return chosen

    def _take(self, candidates: dict[UUID, Candidate], count: int,
              loaded: dict[UUID, Any]) -> None:
        """Free bots, whole users at a time (the ones of users held here first); never
        a bot of a user another live worker trades."""
        free = [c for b, c in candidates.items() if b not in self.held]
        if not free:
            return
        holders = self.store.holders([c.bot_id for c in free])
        mine = {candidates[b].group for b in self.held if b in candidates}
        busy = {c.group for c in free if holders.get(c.bot_id) not in (None, self.worker)}
        groups = _by_group(c for c in free if c.group not in busy)
        order = sorted(groups, key=lambda group: (group not in mine, group))
        wanted: list[UUID] = []
        for group in order:
            if len(wanted) >= count and group not in mine:
                break
            wanted += groups[group]
        if not wanted:
            return
        taken = self.store.acquire(wanted, self.seconds)
        self._follow(taken, refresh=any(candidates[b].open_deal for b in taken), loaded=loaded)

    def _follow(self, taken: dict[UUID, int], refresh: bool,
                loaded: dict[UUID, Any] | None = None) -> None:
        """Trade the bots just leased, all or nothing: those that cannot be followed (all of
        them when following raises, e.g. the database away while loading) are dropped and
        their leases let go at once, for a later tick to take again. A lease kept without
        its bot followed would be renewed here for good and the bot never traded."""
        if not taken:
            return
        self.held.update(taken)  # before following: a bot's first append is fenced
        try:
            if refresh:  # orders and fills the previous owner wrote reach this worker's index
                self.paper.refresh_index()
            # All at once (a few queries, not a few per bot: thousands at a worker's start)
            problems = self.paper.follow_many(list(taken), loaded)
        except Exception as error:
            problems = dict.fromkeys(taken, error)
            if len(taken) > 1 and not transient(error):
                # One bot this code cannot load (an event of a newer version in its deal)
                # failed the whole take: its user's other bots were let go with it, at
                # every tick. Each is followed alone instead.
                problems = self._follow_each(list(taken), loaded)
        self._unloadable(problems)
        self._let_go(list(problems))

    def _follow_each(self, bot_ids: list[UUID],
                     loaded: dict[UUID, Any] | None) -> dict[UUID, Exception]:
        problems: dict[UUID, Exception] = {}
        for bot_id in bot_ids:
            try:
                problems.update(self.paper.follow_many([bot_id], loaded))
            except Exception as error:
                problems[bot_id] = error
        return problems

    def _unloadable(self, problems: dict[UUID, Exception]) -> None:
        """Bots that could not be followed: another tick tries again. One whose own events
        or configuration failed (not the database) is no worker's to trade until that
        changes: it is failed (``BOT_NOT_LOADABLE``, once, fenced by the lease held now)
        and known here as such, so that its user's count limits are judged without it
        held, with its open deal counted from the log (``judges``, ``unloadable``)."""
        self.unloaded.difference_update(b for b in list(self.unloaded)
                                        if b in self.held and b not in problems)  # followed
        for bot_id, error in problems.items():
            if transient(error):
                log.error("bot %s: could not be followed: %s: %s", bot_id,
                          type(error).__name__, error)
                continue
            if bot_id not in self.unloaded:  # (said once: each tick tries again)
                log.error("bot %s: cannot be loaded here: %s: %s", bot_id,
                          type(error).__name__, error)
                record = getattr(self.paper, "record_unloadable", None)
                if record is not None:
                    record(bot_id, error)
                self.unloaded.add(bot_id)

    def _let_go(self, bot_ids: list[UUID]) -> None:
        """Drop bots not traded after all and release their leases. When the release fails
        too, the next tick releases them (``_strays``)."""
        for bot_id in bot_ids:
            self.held.pop(bot_id, None)
            try:
                self.paper.unfollow(bot_id, release=True)
            except Exception as error:  # not followed in the first place
                log.warning("bot %s: unfollow failed: %s: %s", bot_id, type(error).__name__,
                            error)
        try:
            self.store.release(bot_ids)
        except Exception as error:
            log.warning("%d lease(s) not released (%s: %s): released at the next tick",
                        len(bot_ids), type(error).__name__, error)

    def _strays(self, renewed: dict[UUID, int]) -> None:
        """Leases this worker renewed without holding their bots (a take whose following
        and release both failed): let go, so that a worker takes them that trades them."""
        strays = [b for b in renewed if b not in self.held]
        if strays:
            log.warning("%d lease(s) held without their bots traded: released", len(strays))
            self.store.release(strays)


def transient(error: Exception) -> bool:
    """An error of the database or the network (a later try may pass), not of the bot's."""
    return (isinstance(error, PersistenceError | OSError | LeaseLostError)
            or getattr(error, "code", None) == "EXCHANGE_UNAVAILABLE"
            or type(error).__module__.split(".")[0] in ("psycopg", "sqlite3"))


def _by_group(candidates: Iterable[Candidate]) -> dict[str, list[UUID]]:
    groups: dict[str, list[UUID]] = {}
    for c in candidates:
        groups.setdefault(c.group, []).append(c.bot_id)
    for bots in groups.values():
        bots.sort()
    return groups

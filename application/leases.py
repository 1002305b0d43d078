"""Engine workers own bots by lease (``serve --role engine|all`` on PostgreSQL).

A lease row per bot names its worker, a fencing token (bumped every time another worker
takes the bot) and when it expires. Lease rows are operational data, not aggregate state:
losing them all only means every bot is taken again, from its events.

- **Fence.** Every append a worker makes for a bot carries the token it holds
  (:func:`fenced`); the event store checks it in the transaction that stores the events
  (``adapters/event_store/leases.py``), so a worker that lost a lease (paused, cut off,
  slower than its renewal) can never write for that bot again: the append fails with
  ``LEASE_LOST`` and the worker drops the bot.
- **Renewal.** Every quarter of ``TRADETAPE_LEASE_SECONDS`` (default 10) a thread of its
  own renews the worker's leases and its liveness row, holding no engine lock: a tick that
  waits for the engine lock behind a long step, or takes over a dead worker's bots for
  longer than a lease, used to hold the renewal up with it, and the worker's other bots
  expired while it was alive (20-80 interruptions per kill drill). Renewing out of step
  with the engine is safe because the fence, not the renewal, decides who writes: a lease
  renewed for a bot this worker is dropping only makes it wait to be taken. A worker killed
  with -9 is seen dead at once (the database releases its session lock with its
  connection); a worker that hangs as a whole loses its leases when they expire, and one
  whose tick has not finished for ``stall_leases`` lease times (a step or a take that never
  ends) stops renewing, so that its bots go to another worker. Either way another worker
  takes its bots at its next tick.
- **Share.** A dead worker's bots are taken by the first worker that sees them, whatever
  its share; then each worker holds about ``ceil(bots / live workers)`` bots: a worker that
  joins is given bots by the others releasing their excess (the bots of one account move
  together, since they share a paper wallet), once it is **ready**: it says so in its
  worker row at its first tick after its server has started (``started``: its first take
  done, its live loop stepping). Until then the others do not count it, so bots let go are
  never left waiting for a worker still starting (5-22 s on a loaded machine, past the
  lease time); a joiner takes only free bots. Readiness moves no lease: the fence alone
  decides who writes.

Ownership changes only through ``PaperTrading.follow`` / ``unfollow`` (see
``application/leased_paper.py``). The manager never reads the wall clock: the database's
``now()`` decides expiry, so workers on several machines need no synchronised clocks.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from application.background import run_rounds
from application.lease_renewal import RENEWALS_PER_LEASE, Renewal
from domain.errors import DomainError, LeaseLostError

log = logging.getLogger("tradetape.leases")
__all__ = ["Candidate", "Fence", "LeaseLostError", "LeaseManager", "current_fence", "fenced"]

LEASE_SECONDS_ENV = "TRADETAPE_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 10.0
# A tick that has not finished after this many lease times is stuck (a step or a take that
# never ends): the renewal stops, and another worker takes the bots when their leases expire.
# Generous: a worker's first take of thousands of bots may last minutes on a loaded machine.
STALL_LEASES = 30.0


def lease_seconds(environ) -> float:
    text = (environ.get(LEASE_SECONDS_ENV) or "").strip()
    if not text:
        return DEFAULT_LEASE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0.5 <= seconds <= 3600:
        raise DomainError(f"{LEASE_SECONDS_ENV}={text!r}: give seconds between 0.5 and 3600",
                          code="INVALID_SETTING", field=LEASE_SECONDS_ENV)
    return seconds


@dataclass(frozen=True)
class Fence:
    """What an append must find in the lease table, in its own transaction."""

    worker: str
    tokens: dict[UUID, int]  # bot id -> the token this worker holds (-1: none held)


_current = threading.local()


def current_fence() -> Fence | None:
    """The fence of the append under way on this thread (read by the event store)."""
    return getattr(_current, "fence", None)


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    previous = current_fence()
    _current.fence = fence
    try:
        yield
    finally:
        _current.fence = previous


class LeaseStore(Protocol):
    """The lease table (``adapters/event_store/leases.py``)."""

    worker: str

    def join(self, seconds: float) -> None:
        """Register this worker as alive (and hold what shows it alive), not ready."""

    def ready(self) -> None:
        """Say this worker is ready: its first take done, it trades what it is given."""

    def heartbeat(self, seconds: float) -> int:
        """Keep this worker alive; returns how many live workers count in the shares: the
        ready ones and this one (while this one is not ready, every live one)."""

    def renew(self, seconds: float) -> dict[UUID, int]:
        """Extend this worker's leases; returns the ones it still holds, with their tokens."""

    def acquire(self, bot_ids: list[UUID], seconds: float) -> dict[UUID, int]:
        """Take those of ``bot_ids`` that are free (no lease, expired, or held by a worker
        that is not alive); returns the ones taken, with their new tokens."""

    def holders(self, bot_ids: list[UUID]) -> dict[UUID, str]:
        """The live worker holding each of ``bot_ids`` that is held by one."""

    def orphans(self, bot_ids: list[UUID]) -> set[UUID]:
        """Those of ``bot_ids`` whose holder died or let its lease expire (not given
        away): whoever sees them first takes them, whatever its share."""

    def release(self, bot_ids: list[UUID]) -> None:
        """Give up leases (expired now; the next owner bumps the token)."""

    def leave(self) -> None:
        """Release everything and close."""


class Follower(Protocol):
    """The engine side of ownership: ``PaperTrading.follow`` / ``unfollow``."""

    lock: threading.RLock

    def follow(self, bot_id: UUID) -> None: ...

    def follow_many(self, bot_ids: Iterable[UUID],
                    loaded: dict[UUID, Any] | None = None) -> dict[UUID, Exception]:
        """``follow`` each, loaded together (those in ``loaded``: just loaded, as given);
        returns the ones that failed, with why."""
        ...

    def unfollow(self, bot_id: UUID, *, release: bool = False) -> None: ...

    def refresh_index(self) -> None: ...

    def close_deal(self, bot_id: UUID, reason: Any, actor: str) -> UUID: ...


@dataclass(frozen=True)
class Candidate:
    """A bot that needs an engine, and the account whose wallet it shares."""

    bot_id: UUID
    account: str
    open_deal: bool = False  # orders another worker placed may rest for it
    close: tuple[str, str] | None = None  # (reason, actor) of a close asked elsewhere


class LeaseManager:
    """Holds this worker's share of the bots that need an engine.

    ``wanted()``: every bot that needs an engine now (running, or holding an open deal)."""

    def __init__(self, store: LeaseStore, paper: Follower,
                 wanted: Callable[[], Iterable[Candidate]], seconds: float,
                 loaded: Callable[[], dict[UUID, Any]] = dict,
                 stall_leases: float = STALL_LEASES):
        """``loaded``: the bot aggregates ``wanted`` has just loaded, by id (the tick then
        follows them without loading them again: a start's thousands of bots).
        ``stall_leases``: how many lease times a tick may last before the renewal gives
        the worker's bots up."""
        self.store, self.paper, self.wanted, self.seconds = store, paper, wanted, seconds
        self.loaded = loaded
        self.stall_rounds = math.ceil(stall_leases * RENEWALS_PER_LEASE)
        self._ticking = False  # a tick is under way (the renewal watches it finish)
        self._tick_serial = 0  # ticks begun
        self._renewal: Renewal | None = None
        self.held: dict[UUID, int] = {}  # bot id -> token
        self._dropping: set[UUID] = set()  # lost by a refused append, to unfollow
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.ready = False  # said in the lease table after a tick completed, once it steps
        self._say_ready = True  # else not before ``started`` (a server's start under way)
        self.last_error: str | None = None

    @property
    def worker(self) -> str:
        return self.store.worker

    # --- the fence ---------------------------------------------------------------------------

    def fence(self, bot_ids: Iterable[UUID]) -> Fence:
        with self._lock:
            return Fence(self.worker, {b: self.held.get(b, -1) for b in bot_ids})

    def holds(self, bot_id: UUID) -> bool:
        with self._lock:
            return bot_id in self.held

    def lost(self, bot_ids: Iterable[UUID]) -> None:
        """An append was refused: these bots are another worker's now. They are dropped at
        the next tick (soon: woken now); meanwhile their appends are refused here at once."""
        with self._lock:
            for bot_id in bot_ids:
                if self.held.pop(bot_id, None) is not None:
                    log.warning("bot %s: lease lost, another worker trades it", bot_id)
                    self._dropping.add(bot_id)
        self._wake.set()

    def claim(self, bot_id: UUID) -> bool:
        """A command here started ``bot_id``: take its lease now if it is free and trade it
        (the shares even out at later ticks); else its holder trades it."""
        with self.paper.lock, self._lock:
            if bot_id in self.held:
                return True
            taken = self.store.acquire([bot_id], self.seconds)
            if bot_id not in taken:
                self._wake.set()
                return False
            self._follow(taken, refresh=True)
            return bot_id in self.held

    # --- the ticks ---------------------------------------------------------------------------

    def start(self) -> None:
        """Join, start renewing, take this worker's first share now, then tick on a
        thread. Not ready (given no bots by the others) until ``started``."""
        self._say_ready = False
        self.store.join(self.seconds)
        self._renewal = Renewal(self.store, self, self._stop)
        self._renewal.start()  # before the first take, which may outlast a lease
        self.tick()
        self._thread = threading.Thread(target=self._run, name="tradetape-leases",
                                        daemon=True)
        self._thread.start()

    def started(self) -> None:
        """The server around it has started and steps: its next tick says it is ready. Its
        start's other work (positions, the wallet round, the live loop) competes with the
        ticks, so bots given to it before then waited 5-22 s in the kill drill."""
        self._say_ready = True
        self._wake.set()

    def wake(self) -> None:
        """Something changed (a bot started, a worker joined): tick soon."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._renewal is not None:  # before leaving: it would connect again
            self._renewal.join(10)
        with self.paper.lock, self._lock:
            for bot_id in list(self.held):
                self.paper.unfollow(bot_id, release=True)
            self.held.clear()
        self.store.leave()

    def _run(self) -> None:
        run_rounds(self.tick, stop=self._stop, wake=self._wake, every=self.seconds / 4,
                   ended=self._ticked)

    def _ticked(self, error: str | None) -> None:
        """A failed tick (the database away) is tried again at the next one, and the
        leases expire on their own if it lasts."""
        self.last_error = error
        if error is not None:
            log.warning("lease tick failed: %s", error)

    def tick_under_way(self) -> int | None:
        """The serial of the tick under way, None between ticks (read by the renewal)."""
        return self._tick_serial if self._ticking else None

    def tick(self) -> None:
        """Renew, drop what was lost or is no longer wanted, then move toward the fair
        share: give up the excess, or take free bots."""
        self._tick_serial += 1
        self._ticking = True
        try:
            self._tick()
            if not self.ready and self._say_ready:  # a take done and it can step: the
                self.store.ready()  # others may give it bots now
                self.ready = True
        finally:
            self._ticking = False

    def _tick(self) -> None:
        workers = max(1, self.store.heartbeat(self.seconds))
        with self._lock:  # a command may claim a bot meanwhile: judged at the next tick
            before = dict(self.held)
        renewed = self.store.renew(self.seconds)
        candidates = {c.bot_id: c for c in self.wanted()}
        loaded = self.loaded()  # as fresh as loading them again below
        with self.paper.lock, self._lock:
            gone = [b for b, token in before.items()
                    if renewed.get(b) != token and self.held.get(b) == token]
            for bot_id in [*gone, *self._dropping]:
                if bot_id in gone:
                    log.warning("bot %s: lease lost, another worker trades it", bot_id)
                self.held.pop(bot_id, None)
                self.paper.unfollow(bot_id, release=True)
            self._dropping.clear()
            self._strays(renewed)  # under the lock: no take is halfway
            self._release([b for b in before if b in self.held and b not in candidates])
        with self.paper.lock, self._lock:
            if self._adopt(candidates, loaded):  # a worker died since the count above:
                # counted again, else this worker would give away bots of its own for nothing
                workers = max(1, self.store.heartbeat(self.seconds))
            share = math.ceil(len(candidates) / workers)
            if len(self.held) > share:
                self._release(self._excess(candidates, len(self.held) - share))
            elif len(self.held) < share:
                self._take(candidates, share - len(self.held), loaded)
            self._close_asked(candidates)
        self.ticks += 1

    def _close_asked(self, candidates: dict[UUID, Candidate]) -> None:
        """Deals another process asked to close (``Bot.DealCloseRequested``), of bots held
        here: sold now. One that fails is asked again at the next tick."""
        from domain.deals import CloseReason

        for bot_id, candidate in candidates.items():
            if candidate.close is None or bot_id not in self.held:
                continue
            reason, actor = candidate.close
            try:
                self.paper.close_deal(bot_id, CloseReason(reason), actor=actor)
            except Exception as error:
                log.warning("bot %s: the close asked by %s failed: %s: %s", bot_id, actor,
                            type(error).__name__, error)

    def _adopt(self, candidates: dict[UUID, Candidate], loaded: dict[UUID, Any]) -> bool:
        """A dead worker's bots trade again at once, here: the shares even out later.
        Whether any was taken."""
        orphans = self.store.orphans([b for b in candidates if b not in self.held])
        if not orphans:
            return False
        taken = self.store.acquire(sorted(orphans), self.seconds)
        self._follow(taken, refresh=True, loaded=loaded)
        return bool(taken)

    def _release(self, bot_ids: list[UUID]) -> None:
        if not bot_ids:
            return
        for bot_id in bot_ids:  # stop writing first, then let go
            self.paper.unfollow(bot_id, release=True)
            self.held.pop(bot_id, None)
        self.store.release(bot_ids)

    def _excess(self, candidates: dict[UUID, Candidate], count: int) -> list[UUID]:
        """Whole accounts, smallest first, as long as they add up to at most ``count``
        bots (an account bigger than the excess stays: shares are about even, not exact)."""
        groups = _by_account(candidates[b] for b in self.held if b in candidates)
        chosen: list[UUID] = []
        for _, bots in sorted(groups.items(), key=lambda item: (len(item[1]), item[0])):
            if len(chosen) + len(bots) <= count:
                chosen += bots
        return chosen

    def _take(self, candidates: dict[UUID, Candidate], count: int,
              loaded: dict[UUID, Any]) -> None:
        """Free bots, whole accounts at a time (the ones of accounts held here first); never
        a bot of an account another live worker trades."""
        free = [c for b, c in candidates.items() if b not in self.held]
        if not free:
            return
        holders = self.store.holders([c.bot_id for c in free])
        mine = {candidates[b].account for b in self.held if b in candidates}
        busy = {c.account for c in free if holders.get(c.bot_id) not in (None, self.worker)}
        groups = _by_account(c for c in free if c.account not in busy)
        order = sorted(groups, key=lambda account: (account not in mine, account))
        wanted: list[UUID] = []
        for account in order:
            if len(wanted) >= count and account not in mine:
                break
            wanted += groups[account]
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
        for bot_id, error in problems.items():
            log.error("bot %s: could not be followed: %s: %s", bot_id,
                      type(error).__name__, error)  # that bot alone: another tick retries
        self._let_go(list(problems))

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


def _by_account(candidates: Iterable[Candidate]) -> dict[str, list[UUID]]:
    groups: dict[str, list[UUID]] = {}
    for c in candidates:
        groups.setdefault(c.account, []).append(c.bot_id)
    for bots in groups.values():
        bots.sort()
    return groups

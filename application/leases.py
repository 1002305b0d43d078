"""Engine workers own bots by lease (``serve --role engine|all`` on PostgreSQL).

A lease row per bot names its worker, a fencing token (a new, higher one every time a
worker takes the bot: never handed out twice, even for a row deleted and made again) and
when it expires. Lease rows are operational data, not aggregate state: losing them all only
means every bot is taken again, from its events; the ones no one can hold any more (long
ended, their worker gone) are reaped (``REAP_AFTER_LEASES``).

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
  joins is given bots by the others releasing their excess (the bots of one user move
  together: their risk limits count them all, and an account's share a paper wallet; a
  user split for a while comes together on the worker holding most of their bots, and
  meanwhile no worker opens what their count limits judge: ``judges``), once it is
  **ready**: it says so in its worker row at its first tick after its server has started
  (``started``: its first take done, its live loop stepping). Until then the others do not
  count it, so bots let go are never left waiting for a worker still starting (5-22 s on a
  loaded machine, past the lease time); a joiner takes only free bots. Readiness moves no
  lease: the fence alone decides who writes.

- **One version.** Processes of one schema keep the same cross-process rules (the fence,
  the exposure holds' keys: a process of older rules does not see a newer one's holds).
  Each publishes the version of those rules (``protocol``) in its deployment rows
  (``background_tasks``, ``application/task_board.py``); a worker that sees a live process
  of another version trades nothing: it lets its bots go and takes none (``stood_down``,
  one log line and ``/health``'s ``leases``): ``PROTOCOL_NEWER`` when the other is newer
  (this one is to be upgraded or stopped), ``PROTOCOL_OLDER`` when it is older (this one
  waits for it to leave, or for its rows to expire: ``TTL_SECONDS``). So old and new never
  trade the same users together; it trades again at the first tick that sees one version.

Ownership changes only through ``PaperTrading.follow`` / ``unfollow`` (see
``application/leased_paper.py``). The manager never reads the wall clock: the database's
``now()`` decides expiry, so workers on several machines need no synchronised clocks.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from uuid import UUID

from application.background import run_rounds
from application.collector import collector_paused
from application.lease_fence import Fence, current_fence, fenced
from application.lease_renewal import RENEWALS_PER_LEASE, Renewal
from application.lease_shares import Candidate, Shares
from application.task_board import TTL_SECONDS
from domain.errors import DomainError, LeaseLostError

log = logging.getLogger("tradetape.leases")
__all__ = ["Candidate", "Fence", "LeaseLostError", "LeaseManager", "current_fence", "fenced"]

LEASE_SECONDS_ENV = "TRADETAPE_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 10.0
# A tick that has not finished after this many lease times is stuck (a step or a take that
# never ends): the renewal stops, and another worker takes the bots when their leases expire.
# Generous: a worker's first take of thousands of bots may last minutes on a loaded machine.
STALL_LEASES = 30.0
# The reaper (``LeaseStore.reap``): rows whose lease ended this many lease times ago (a
# dead or hung holder's bots are adopted within one), and worker rows of processes gone as
# long, are deleted; looked for at a worker's first tick, then every this many ticks (a tick
# every quarter lease: about every ten lease times).
REAP_AFTER_LEASES = 6.0
REAP_EVERY_TICKS = 40
# A tick leaves a lease with more than this share of a lease time to run as it is (the
# renewal thread renewed it within the last quarter lease); an older one it renews too.
FRESH_AT_TICK = 1 - 1 / RENEWALS_PER_LEASE


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

    def renew(self, seconds: float, fresh: float | None = None) -> dict[UUID, int]:
        """Extend this worker's leases; returns the ones it still holds, with their tokens.
        ``fresh``: one with more than this many seconds to run is not rewritten."""

    def extend(self, seconds: float) -> int:
        """Extend every lease of this worker, reading none back; returns how many."""

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

    def reap(self, seconds: float) -> tuple[int, int]:
        """Delete the leases that ended ``seconds`` ago or more and the rows of workers
        gone as long (no one can hold them any more), a bounded number at a time; tokens
        are never handed out again. Returns how many (leases, workers)."""

    def leave(self) -> None:
        """Release everything and close."""

    protocol: int  # the version of the cross-process rules this process keeps

    def protocols(self, ttl_seconds: float) -> list[tuple[str, str, int]]:
        """The live processes (a deployment row within ``ttl_seconds``) of another version
        of the cross-process rules: (process, role, protocol); 0: older than versions."""


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

    def owner_of(self, bot_id: UUID) -> str | None:
        """The owner of a bot followed here (None: not followed)."""
        ...

    def refresh_index(self) -> None: ...

    def close_deal(self, bot_id: UUID, reason: Any, actor: str) -> UUID: ...


class LeaseManager(Shares):
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
        # owner -> their bots that need an engine, as the last tick saw them (and claimed
        # since): who may judge an owner's count limits (``judges``)
        self._owners: dict[str, set[UUID]] = {}
        # owner -> the tick under way when a command here claimed a bot of theirs: not
        # judged here until a later tick has looked at the log (``judges``)
        self._claimed: dict[str, int] = {}
        self._dropping: set[UUID] = set()  # lost by a refused append, to unfollow
        # Bots that failed to load here for reasons of their own (``Shares._unloadable``):
        # their users are judged without them held, their deals counted from the log
        self.unloaded: set[UUID] = set()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.ready = False  # said in the lease table after a tick completed, once it steps
        self._say_ready = True  # else not before ``started`` (a server's start under way)
        self.last_error: str | None = None
        # why this worker trades nothing (a live process of another protocol: ``One
        # version`` above), its code first; None while it trades
        self.stood_down: str | None = None

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

    # --- a user's risk limits across workers ---------------------------------------------

    def judges(self, owner_id: str) -> bool:
        """Whether this worker holds every bot of ``owner_id`` that it knows needs an
        engine: only then may it judge the limits that count all their bots (open deals,
        exposure), with its own figures. A worker holding part of them opens no deal they
        judge; the one that holds them all fences its buy with every lease it counted
        (``companions``), so a stale belief (a lease taken since its last tick) writes
        nothing. Two workers cannot both judge one user: each knows the other's bots from
        the log as of its last tick. A bot a command claimed here since then is one the
        other may not know of yet (two bots of a user started at once on two workers):
        its owner is judged again once a tick has looked since. A bot of theirs that this
        worker could not load (``unloaded``) is no worker's: it need not be held, and what
        its events say it holds is counted instead (``unloadable``)."""
        with self._lock:
            return (owner_id not in self._claimed
                    and self._owners.get(owner_id, set()) - self.held.keys() <= self.unloaded)

    def unloadable(self, owner_id: str) -> list[UUID]:
        """The bots of ``owner_id`` that need an engine and that this worker could not
        load (``unloaded``) nor holds: what their events say they hold is counted in the
        owner's figures (``LeasedPaperTrading``), for no worker trades them. WHY: one such
        bot kept its user unjudged on every worker, so none of their other bots opened a
        deal a count limit judges, for good."""
        with self._lock:
            return sorted(b for b in self._owners.get(owner_id, ())
                          if b in self.unloaded and b not in self.held)

    def companions(self, owner_ids: Iterable[str]) -> set[UUID]:
        """The bots of ``owner_ids`` held here: fenced with a buy that judged their limits."""
        with self._lock:
            found: set[UUID] = set()
            for owner_id in owner_ids:
                found.update(b for b in self._owners.get(owner_id, ()) if b in self.held)
            return found

    def _know(self, candidates: dict[UUID, Candidate]) -> None:
        owners: dict[str, set[UUID]] = {}
        for c in candidates.values():
            if c.owner:
                owners.setdefault(c.owner, set()).add(c.bot_id)
        for bot_id in self.held:  # claimed since the last look: known by their owner
            if bot_id not in candidates and (owner := self.paper.owner_of(bot_id)):
                owners.setdefault(owner, set()).add(bot_id)
        self._owners = owners
        self.unloaded &= candidates.keys()  # (stopped, its deal closed: no engine needed)
        # claims made before this tick began: its look at the log came after them
        self._claimed = {o: n for o, n in self._claimed.items() if n >= self._tick_serial}

    def claim(self, bot_id: UUID) -> bool:
        """A command here started ``bot_id``: take its lease now if it is free and trade it
        (the shares even out at later ticks); else its holder trades it."""
        with self.paper.lock.quietly(), self._lock:
            if bot_id in self.held:
                return True
            if self.stood_down is not None:  # (another version runs: no bot taken)
                return False
            taken = self.store.acquire([bot_id], self.seconds)
            if bot_id not in taken:
                self._wake.set()
                return False
            self._follow(taken, refresh=True)
            if bot_id in self.held and (owner := self.paper.owner_of(bot_id)):
                self._owners.setdefault(owner, set()).add(bot_id)
                self._claimed[owner] = self._tick_serial
            return bot_id in self.held

    # --- the ticks ---------------------------------------------------------------------------

    def start(self) -> None:
        """Join, start renewing, take this worker's first share now, then tick on a
        thread. Not ready (given no bots by the others) until ``started``."""
        self._say_ready = False
        self.store.join(self.seconds)
        self._renewal = Renewal(self.store, self, self._stop)
        self._renewal.start()  # before the first take, which may outlast a lease
        # It builds every bot's engine, tens of thousands of objects that live on: no
        # collection walks them meanwhile, nor later (application/collector.py).
        with collector_paused(freeze_survivors=True):
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
        with self.paper.lock.quietly(), self._lock:
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
        if self._tick_serial % REAP_EVERY_TICKS == 1:
            self._reap()

    def _reap(self) -> None:
        """Housekeeping after a tick: a failure is said and tried again later, the tick
        done all the same. WHY: every restart left its worker row and every stopped bot
        its lease row for good (the kill drill: 10 worker rows, 8 of them dead, after 6
        minutes); the rows no one can hold any more go."""
        try:
            leases, workers = self.store.reap(self.seconds * REAP_AFTER_LEASES)
        except Exception as error:
            log.warning("lease reaper failed (tried again later): %s: %s",
                        type(error).__name__, error)
            return
        if leases or workers:
            log.info("lease reaper: %d lease row(s), %d worker row(s) no one can hold any "
                     "more deleted", leases, workers)

    def _stand_down(self) -> bool:
        """A live process of another protocol (``One version`` above): every bot let go,
        none taken; said once when it begins (its code first), once when it ends."""
        others = self.store.protocols(TTL_SECONDS)
        mine = self.store.protocol
        if not others:
            if self.stood_down is not None:
                log.warning("every process of the schema runs protocol %d now: worker %s "
                            "trades again", mine, self.worker)
            self.stood_down = None
            return False
        newer = [o for o in others if o[2] > mine]
        code = "PROTOCOL_NEWER" if newer else "PROTOCOL_OLDER"
        named = ", ".join(f"{name} ({role}, protocol {protocol})"
                          for name, role, protocol in (newer or others))
        why = (f"{code}: {named} keeps other cross-process rules than this worker's "
               f"protocol {mine}; " + ("this worker trades nothing: upgrade it" if newer
                                       else "this worker trades nothing until it leaves"))
        if why != self.stood_down:
            log.error("worker %s: %s", self.worker, why)
        self.stood_down = why
        with self.paper.lock.quietly(), self._lock:
            for bot_id in self._dropping:  # (lost by a refused append: not held)
                self.paper.unfollow(bot_id, release=True)
            self._dropping.clear()
            self._release(list(self.held))
        return True

    def _tick(self) -> None:
        workers = max(1, self.store.heartbeat(self.seconds))
        if self._stand_down():
            self.ticks += 1
            return
        with self._lock:  # a command may claim a bot meanwhile: judged at the next tick
            before = dict(self.held)
        # What it holds, renewed only where the renewal thread has not in the last quarter
        # lease: each rewrite leaves a dead row version, and the two renewing every quarter
        # lease rewrote every lease row eight times a lease time
        renewed = self.store.renew(self.seconds, fresh=self.seconds * FRESH_AT_TICK)
        candidates = {c.bot_id: c for c in self.wanted()}
        loaded = self.loaded()  # as fresh as loading them again below
        with self.paper.lock.quietly(), self._lock:
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
            self._know(candidates)
        with self.paper.lock.quietly(), self._lock:
            if self._adopt(candidates, loaded):  # a worker died since the count above:
                # counted again, else this worker would give away bots of its own for nothing
                workers = max(1, self.store.heartbeat(self.seconds))
            else:  # (a user adopted in parts comes together at a later tick, once every
                self._unsplit(candidates, loaded)  # live worker has seen its share)
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
            # A close may pause other bots (risk limits) and leave its deal open when the
            # sell is refused: every band is measured again, as after any other holder
            self.paper.lock.count()
            try:
                self.paper.close_deal(bot_id, CloseReason(reason), actor=actor)
            except Exception as error:
                log.warning("bot %s: the close asked by %s failed: %s: %s", bot_id, actor,
                            type(error).__name__, error)

"""A user's maxExposureQuote across processes: the check and the write of a buy are one step
for one user, whichever processes decide them.

WHY: an engine worker judges a deal's buys from its engines and the positions in the log,
an api process (or another worker) judges a position from the log; each decided before the
other's append, and both were written: the limit passed by one order (13 of 30 rounds in
``tests/integration/test_risk_exposure_race.py`` before this). Both sides now go through
the user's **exposure stamp** (a version per user, ``adapters/event_store/exposure_stamps.py``):

- A position is opened under its owner's hold (``hold``): no other hold of theirs, and no
  engine append of buys judged for them, runs meanwhile (another user's hold does not
  wait for it); its append moves the stamp on.
- An engine reads the stamp before its figures (``note``, from ``RiskLimits.check``) and
  appends fenced with it (``take``): an append whose stamp moved on is refused whole
  (``EXPOSURE_CHANGED``, a race: the candle is stepped again from the log, the position
  now in the figures).

Only owners with a ``maxExposureQuote`` are stamped or held: nothing else counts positions
and deals together. One process alone (SQLite) needs none of it: its lock serialises both.

A hold kept for long elsewhere (a position whose live exchange does not answer) costs an
engine's append one bounded wait, refused naming the users held (``EXPOSURE_HELD``). Those
users are then **kept** here (``defer``: logged once, until let go): their markets are left
out of each attempt at a candle while ``kept`` finds their hold still taken (asked without
waiting), every other bot's changes appended without them; they trade at the first
attempt that finds it let go, at this candle or a later one (``deferred`` counts the bot
steps left out). Before, the one append carried every bot of the candle: it waited and was
refused 4 times, 20 s, and the candle was skipped for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from application.lease_fence import Fence, current_fence, fenced

log = logging.getLogger("tradetape.risk")


class ExposureStamps(Protocol):
    """The stamps' store (``PostgresExposureStamps``)."""

    def version(self, owner: str) -> int:
        """The owner's stamp now (0: never moved)."""

    def hold(self, owner: str) -> AbstractContextManager[None]:
        """The owner's hold while inside: waits for the one under way, and for engine
        appends judged on their stamp."""

    def held(self, owners: list[str]) -> set[str]:
        """Those of ``owners`` whose hold another process keeps now (without waiting)."""

    def close(self) -> None: ...


class ExposureHolds:
    """One process's stamps judged on, kept until its next append takes them. Used under
    the runner's lock (checks, appends and positions' commands all take it)."""

    def __init__(self, stamps: ExposureStamps):
        self.stamps = stamps
        self._seen: dict[str, int] = {}  # owner -> the stamp read before their figures
        self._held: set[str] = set()
        self._kept: set[str] = set()  # owners found held elsewhere, until let go (``kept``)
        self.deferred = 0  # bot steps left out while their owner's hold was kept elsewhere

    def close(self) -> None:
        self.stamps.close()

    def note(self, owner: str) -> None:
        """Before a buy's figures are read: the stamp they stand for. The first read since
        the last append stands (older figures may have judged an earlier buy)."""
        if owner not in self._seen and owner not in self._held:
            self._seen[owner] = self.stamps.version(owner)

    def take(self, owners: Iterable[str]) -> dict[str, int]:
        """The stamps an append of ``owners``' changes is fenced with (forgotten here)."""
        if not self._seen:
            return {}
        return {o: self._seen.pop(o) for o in set(owners) if o in self._seen}

    def defer(self, owners: Iterable[str], why: object) -> None:
        """``owners``' hold was kept elsewhere past an append's wait (``why``: the
        ``EXPOSURE_HELD`` refusal): their bots are left out until it is let go (one line
        each, not one a candle)."""
        for owner in sorted(set(owners) - self._kept):
            self._kept.add(owner)
            log.warning("the exposure hold of %s is kept by another process (%s): their "
                        "bots are deferred until it is let go, the other users' bots trade "
                        "on", owner, why)  # (its text leads with its code, EXPOSURE_HELD)

    def kept(self) -> set[str]:
        """The owners found held elsewhere whose hold is still taken (asked now, without
        waiting); those let go are forgotten here (they trade again)."""
        if not self._kept:
            return set()
        try:
            still = self.stamps.held(sorted(self._kept))
        except Exception as error:  # (its connection lost: asked again at the next attempt)
            log.warning("could not ask whether the exposure holds of %s are let go: %s; "
                        "their bots stay deferred", ", ".join(sorted(self._kept)), error)
            return set(self._kept)
        for owner in sorted(self._kept - still):
            log.info("the exposure hold of %s was let go: their bots trade again (%d bot "
                     "steps deferred so far in this process)", owner, self.deferred)
        self._kept = set(still)
        return set(still)

    @contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        """A position of ``owner``'s opened inside: checked and appended under their hold;
        the append moves their stamp on. A stamp read here before stands for nothing now
        (and fenced with, this process's append would wait for its own hold)."""
        self._seen.pop(owner, None)
        with self.stamps.hold(owner):
            self._held.add(owner)
            outer = current_fence()
            try:
                with fenced(Fence(outer.worker if outer else "", {},
                                  bumps=frozenset({owner}))):
                    yield
            finally:
                self._held.discard(owner)


class PositionGate:
    """What positions ask before a new one (``Positions.risk_check``): the owner's limits
    (``RiskLimits.check``), under their hold when they have a ``maxExposureQuote`` and this
    process shares the database (``hold``)."""

    def __init__(self, risk):
        self.risk = risk  # (a RiskLimits)

    def __call__(self, owner_id, adds_quote) -> None:
        self.risk.check(owner_id, adds_quote, "position")

    def hold(self, owner_id) -> AbstractContextManager[None]:
        holds = self.risk.holds
        limits = self.risk.risk_of(str(owner_id)) if holds is not None else None
        if limits is None or limits.limits.max_exposure_quote is None:
            return nullcontext()
        return holds.hold(str(owner_id))

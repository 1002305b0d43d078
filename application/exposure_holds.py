"""A user's maxExposureQuote across processes: the check and the write of a buy are one step
for one user, whichever processes decide them.

WHY: an engine worker judges a deal's buys from its engines and the positions in the log,
an api process (or another worker) judges a position from the log; each decided before the
other's append, and both were written: the limit passed by one order (13 of 30 rounds in
``tests/integration/test_risk_exposure_race.py`` before this). Both sides now go through
the user's **exposure stamp** (a version per user, ``adapters/event_store/exposure_stamps.py``):

- A position is opened under its owner's hold (``hold``): no other hold of theirs, and no
  engine append of buys judged for them, runs meanwhile; its append moves the stamp on.
- An engine reads the stamp before its figures (``note``, from ``RiskLimits.check``) and
  appends fenced with it (``take``): an append whose stamp moved on is refused whole
  (``EXPOSURE_CHANGED``, a race: the candle is stepped again from the log, the position
  now in the figures).

Only owners with a ``maxExposureQuote`` are stamped or held: nothing else counts positions
and deals together. One process alone (SQLite) needs none of it: its lock serialises both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from application.lease_fence import Fence, current_fence, fenced


class ExposureStamps(Protocol):
    """The stamps' store (``PostgresExposureStamps``)."""

    def version(self, owner: str) -> int:
        """The owner's stamp now (0: never moved)."""

    def hold(self, owner: str) -> AbstractContextManager[None]:
        """The owner's hold while inside: waits for the one under way, and for engine
        appends judged on their stamp."""

    def close(self) -> None: ...


class ExposureHolds:
    """One process's stamps judged on, kept until its next append takes them. Used under
    the runner's lock (checks, appends and positions' commands all take it)."""

    def __init__(self, stamps: ExposureStamps):
        self.stamps = stamps
        self._seen: dict[str, int] = {}  # owner -> the stamp read before their figures
        self._held: set[str] = set()

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

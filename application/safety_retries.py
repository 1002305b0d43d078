"""A live deal's safety orders the exchange refused or lost, placed again.

A safety order the exchange refused (``REJECTED``: a -1000, a balance it did not see yet, a
refusal during a maintenance) or that never reached it (``LOST``: the request's answer
never came, a worker that lost its lease mid-ladder) used to end there: the deal went on
with fewer safety orders than its plan, for good. Like a cancel not carried out
(``application/live_venue.py``, ``CANCEL_REFUSED``), the level is sent again, as a new
order with a new client id (a refused or lost id is never sent twice), after a backoff
counted in steps (1, 2, 4, ... candles: no wall clock), each refusal one line
(``SAFETY_ORDER_REFUSED``). After ``SAFETY_ATTEMPTS`` refusals of one level nothing more is
sent for it, and it is said once, as an error (``ORDER_NEEDS_ATTENTION``: a person should
look at the account); the deal trades on with the orders it has.

The refusals are the orders' own events, so a restart counts them from the log
(``restore``): a level already given up is not sent again, one not yet is due at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("tradetape.engine")
SAFETY_ATTEMPTS = 5  # orders sent for one level before a person is asked
# Refusals another try may pass (the exchange's own trouble, a balance it did not see yet);
# the others (below the exchange's minimum, an invalid order, keys refused) would be refused
# again the same way: the deal records them (``Deal.OrderRejected``) and goes on without.
RETRIED = frozenset({"EXCHANGE_ERROR", "EXCHANGE_UNAVAILABLE", "INSUFFICIENT_FUNDS"})


def retried(status: str, reason: str | None) -> bool:
    """Whether a safety order that ended ``status`` (``rejected``/``lost``) for ``reason``
    (led by its code) is sent again: a lost one always (it never reached the exchange)."""
    return status == "lost" or (reason or "").split(":", 1)[0] in RETRIED


@dataclass
class _Level:
    refusals: int = 0
    due: int | None = 0  # the step from which it is sent again (None: sent, not refused)


class SafetyRetries:
    """The refused levels of one engine's open deal."""

    def __init__(self) -> None:
        self.steps = 0
        self._levels: dict[int, _Level] = {}

    def refused(self, deal: object, n: int, status: str, reason: str) -> None:
        level = self._levels.setdefault(n, _Level())
        level.refusals += 1
        level.due = self.steps + 2 ** (level.refusals - 1)
        if level.refusals >= SAFETY_ATTEMPTS:
            log.error("safety order %d of deal %s: refused %d times, the last %s: %s; not "
                      "sent again, a person should look at the account "
                      "(ORDER_NEEDS_ATTENTION); the deal trades on without it", n, deal,
                      level.refusals, status, reason)
        else:
            log.warning("safety order %d of deal %s: refused (%d of %d), "
                        "SAFETY_ORDER_REFUSED, %s: %s; sent again in %d steps", n, deal,
                        level.refusals, SAFETY_ATTEMPTS, status, reason,
                        level.due - self.steps)

    def restore(self, n: int, refusals: int) -> None:
        """A level the log says was refused ``refusals`` times (after a restart): due at
        the next step, unless given up."""
        self._levels[n] = _Level(refusals, self.steps)

    def given_up(self, n: int) -> bool:
        level = self._levels.get(n)
        return level is not None and level.refusals >= SAFETY_ATTEMPTS

    def due(self) -> list[int]:
        """A step: the levels to send again now (lowest first)."""
        self.steps += 1
        return sorted(n for n, level in self._levels.items() if level.refusals
                      < SAFETY_ATTEMPTS and level.due is not None and self.steps >= level.due)

    def sent(self, n: int) -> None:
        """Level ``n`` was sent again: not due until refused again (its count kept)."""
        self._levels[n].due = None

"""A heavy candle's appends sent ahead: the changes of the markets stepped so far go to
the log on a thread of their own while the candle's other markets are still being decided.

WHY: at 10,000 bots a wave of take-profits writes ~58,000 events in one candle; deciding
them took ~1.9 s of the loop's processor time, and then the loop waited ~1 s more for
PostgreSQL to store them (py-spy: a third of such a step), while the next candle closed.
The markets of one candle are independent (one per account and pair: an account's wallet is
shared only across pairs), so their changes can be stored in a few transactions, in the
order they were decided (the issue's "one transaction (or a few)"), the database's time
hidden behind the deciding but for the last one.

The appends run one at a time, in order, on one thread; once one fails, the rest are not
sent (``NotSent``): a later one could hold an aggregate's next versions, and stored after
a refused one it would leave a gap. The loop thread waits for them (``CandleRaces._flush``)
before it ends the candle or makes an append of its own, and handles what they did there,
as it handles its own append (``application/paper_races.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

# Aggregates a candle stages before they are sent ahead: ~5,000 events of a wave (about
# 0.15 s of deciding on a slow machine), so the append left to wait for at its end is small
# while each transaction's own cost (the fence, the table lock, the commit) stays a few
# milliseconds in a step of seconds.
AHEAD_AGGREGATES = 2000


class NotSent(Exception):
    """An append queued behind one that failed: never sent (nothing of it stored)."""


@dataclass
class Sent:
    """An append sent ahead, and what the loop needs to settle it."""

    events: list
    bot_ids: set  # the bots whose steps it holds: their markets rebuilt if it fails
    bots: set  # the bots its fence checks (a lease lost drops them)
    head: tuple[Any, int]  # (id, version) of its first event (``_batch_stored``)
    stepped: list  # (key, market) stepped before it left: stored with it
    future: Future = field(repr=False, default_factory=Future)


class AppendsAhead:
    """One thread storing appends in the order they were sent."""

    def __init__(self, aggregates: int = AHEAD_AGGREGATES):
        self.aggregates = aggregates
        self._pool: ThreadPoolExecutor | None = None
        self._stopped = False  # an append failed: those queued behind it are not sent
        self.processor = 0.0  # the appending thread's processor seconds in appends so far

    def send(self, write: Callable[[], list[int]]) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradetape-append")
        return self._pool.submit(self._run, write)

    def _run(self, write: Callable[[], list[int]]) -> list[int]:
        if self._stopped:
            raise NotSent("an append before this one failed")
        started = time.thread_time()
        try:
            return write()
        except BaseException:
            self._stopped = True
            raise
        finally:
            self.processor += time.thread_time() - started  # (only this thread adds)

    def settled(self) -> None:
        """Every append sent has been waited for: the next ones are sent again."""
        self._stopped = False

    def close(self) -> None:
        """The thread ended (a server's stop); a later ``send`` starts another."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

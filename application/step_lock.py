"""The paper runner's lock, counting who took it: a re-entrant lock whose outermost
acquisitions are counted, so a trading step can tell whether anyone else (a command, the
risk limits, a reconciliation) held it since its own last step, and may have changed the
engines it keeps in memory.

It is handed over in the order it was asked for (first come, first served). Python's own
locks are not: a thread that releases one and asks again at once (the wallet monitor's
round, one account after another under the lock, each with queries; the lease manager's
ticks) usually takes it back before a waiting thread is even scheduled, so a trading step
could wait for a whole round of 1,000 accounts (suspected in a 10,000-bot start whose engine
loop stayed at 0 steps; tests/unit/test_step_lock.py shows the mechanism). Here a release
with someone waiting gives the lock to the first waiter, and a thread asking again queues
behind it.

A holder whose changes to the engines mark the markets they move themselves (the lease
manager: following and unfollowing bots mark their markets, ``Following._seat``,
``unfollow``) holds it ``quietly``: not counted, so the next step measures again the bands
of those markets only, not of every market (10,000 bots: ~30 ms of a quiet candle's ~32,
every lease tick). Such a holder that does change something else says so (``count``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class StepLock:
    def __init__(self) -> None:
        self._guard = threading.Lock()  # guards the fields below, held only briefly
        self._owner: int | None = None
        self._depth = 0
        # waiters, in order: (thread, the gate it waits at, whether its hold is counted)
        self._queue: deque[tuple[int, threading.Lock, bool]] = deque()
        self.entries = 0  # outermost acquisitions so far, but the quiet ones

    def acquire(self, blocking: bool = True, timeout: float = -1, *,
                counted: bool = True) -> bool:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._queue:
                self._take(me, counted)
                return True
            if not blocking:
                return False
            gate = threading.Lock()
            gate.acquire()  # opened by the release that hands the lock to this thread
            self._queue.append((me, gate, counted))
        if gate.acquire(timeout=timeout) if timeout >= 0 else gate.acquire():
            return True  # handed over: owner, depth and entries set by the release
        with self._guard:
            if self._owner == me:  # handed over just as the wait ran out
                return True
            self._queue.remove((me, gate, counted))
            return False

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Held, not counted in ``entries`` (outermost: nested, it is the outer hold's)."""
        self.acquire(counted=False)
        try:
            yield
        finally:
            self.release()

    def count(self) -> None:
        """The holder (a quiet one) changes what it does not mark: counted after all."""
        with self._guard:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot count a StepLock this thread does not hold")
            self.entries += 1

    def release(self) -> None:
        with self._guard:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release a StepLock this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            if self._queue:
                waiter, gate, counted = self._queue.popleft()
                self._take(waiter, counted)
                gate.release()

    def _take(self, owner: int, counted: bool = True) -> None:
        self._owner, self._depth = owner, 1
        if counted:
            self.entries += 1

    @property
    def waiting(self) -> int:
        """Threads waiting for the lock."""
        with self._guard:
            return len(self._queue)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

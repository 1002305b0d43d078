"""The paper runner's lock, counting who took it: a re-entrant lock whose outermost
acquisitions are counted, so a trading step can tell whether anyone else (a command, the
risk limits, a reconciliation) held it since its own last step, and may have changed the
engines it keeps in memory."""

from __future__ import annotations

import threading


class StepLock:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # only changed by the thread holding the lock
        self.entries = 0  # outermost acquisitions so far

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._depth += 1
            if self._depth == 1:
                self.entries += 1
        return got

    def release(self) -> None:
        self._depth -= 1
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

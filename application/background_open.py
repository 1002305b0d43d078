"""Work a server's start runs beside another (on a thread of its own), waited for only
where its result is needed. On 2 cores, a start that runs its parts one after another
leaves a core idle while it waits on PostgreSQL: the read models' open (their tables read,
mostly waiting on the database) runs while the engine loads its bots."""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundOpen:
    """``work()`` on a thread started now; ``wait()`` joins it and raises what it raised
    (every time: a caller that needs its result cannot go on without it). ``done``, when
    given, is set when it ends, however (a waiter for part of it is not left waiting)."""

    def __init__(self, work: Callable[[], None], *, name: str,
                 done: threading.Event | None = None):
        self._work, self._done = work, done
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._work()
        except BaseException as error:  # raised again where it is waited for
            self._error = error
        finally:
            if self._done is not None:
                self._done.set()

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error

    def join(self, timeout: float | None = None) -> bool:
        """Wait for it (at most ``timeout`` seconds: None, for good); whether it ended."""
        self._thread.join(timeout)
        return self.finished

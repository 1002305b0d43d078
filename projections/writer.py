"""Committing batches on a connection and a thread of their own, one at a time and in order,
while the next batch is computed: the database's work (COPY, upserts, index updates, the
commit) overlaps with Python's. The driver libraries release the GIL while they wait.

A failed commit is raised to the caller at its next ``submit`` or ``drain``, and every batch
queued after it is skipped until the caller has called ``recover``: nothing of a failed
batch, or of any later one, is ever kept.

While a writer thread runs, the interpreter hands the GIL over every ``SWITCH_INTERVAL``
seconds instead of CPython's 5 ms (``sys.setswitchinterval``, for the whole process, put
back when the last writer closes). A batch's commit is some 80 round trips to the database
(a ``COPY`` or upsert per table, each a few), and after each the writer thread must take the
GIL back from the projections' Python, which holds it without pause: at 5 ms a hand-over,
the writer spent more of a rebuild waiting for the GIL than the database spent working, and
the projections waited for the writer (its queue full). Measured on the 540,171-event bench
log, in-process rebuild of all, alternated at load 9-11: the writer's time over its commits
39.3 / 40.2 s at 5 ms against 26.1 / 19.4 s at 0.2 ms (of which not the database's nor a
processor's: 5.7 / 5.5 s against none), the main thread waiting for the writer's queue 4.1
/ 5.0 s against 1.1 / 2.9 s, the rebuild 52.1 / 50.7 s against 38.1 / 29.5 s; the process's
processor time unchanged (9.6 / 10.1 s against 9.4 / 9.2 s).
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable

from projections.store import ViewStore

Job = Callable[[ViewStore], None]
SWITCH_INTERVAL = 0.0002  # seconds, while any writer thread runs (see above)


class _Switch:
    """The process's switch interval, short while any writer thread is open."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writers = 0
        self.saved: float | None = None  # the interval before the first of them

    def short(self) -> None:
        with self.lock:
            if self.writers == 0:
                self.saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self.saved, SWITCH_INTERVAL))
            self.writers += 1

    def usual(self) -> None:
        with self.lock:
            self.writers -= 1
            if self.writers == 0 and self.saved is not None:
                sys.setswitchinterval(self.saved)
                self.saved = None


_SWITCH = _Switch()


class SyncWriter:
    """Commits on the caller's thread (an in-memory store has a single connection)."""

    def __init__(self, store: ViewStore):
        self.store = store

    def submit(self, job: Job) -> None:
        job(self.store)

    def drain(self) -> None:
        """Nothing is ever pending."""

    def recover(self) -> None:
        """Nothing to discard."""

    def close(self) -> None:
        """The store is the caller's."""


class ThreadedWriter:
    def __init__(self, store: ViewStore, depth: int = 1):
        self.store = store.clone()
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="projection-writer",
                                        daemon=True)
        _SWITCH.short()
        try:
            self._thread.start()
        except BaseException:
            _SWITCH.usual()
            self.store.close()
            raise

    def submit(self, job: Job) -> None:
        self._raise()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every submitted batch is committed (or one failed: raised here)."""
        self._jobs.join()
        self._raise()

    def recover(self) -> None:
        """After a failure: let the skipped batches go, and accept new ones again."""
        self._jobs.join()
        self._error = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._jobs.put(None)
            self._thread.join()
            self.store.close()
        finally:
            _SWITCH.usual()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job(self.store)
            except BaseException as error:  # handed to the submitting thread
                self._error = error
            finally:
                self._jobs.task_done()


def writer_for(store: ViewStore) -> SyncWriter | ThreadedWriter:
    return ThreadedWriter(store) if store.can_clone else SyncWriter(store)

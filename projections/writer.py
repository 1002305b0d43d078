"""Committing batches on a connection and a thread of their own, one at a time and in order,
while the next batch is computed: the database's work (COPY, upserts, index updates, the
commit) overlaps with Python's. The driver libraries release the GIL while they wait.

A failed commit is raised to the caller at its next ``submit`` or ``drain``, and every batch
queued after it is skipped until the caller has called ``recover``: nothing of a failed
batch, or of any later one, is ever kept.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from projections.store import ViewStore

Job = Callable[[ViewStore], None]


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
        self._thread = threading.Thread(target=self._run, name="projection-writer",
                                        daemon=True)
        self._thread.start()

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
        self._jobs.put(None)
        self._thread.join()
        self.store.close()

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

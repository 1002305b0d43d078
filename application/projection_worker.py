"""The read models, kept up to date beside the engine rather than inside its steps: a
thread that applies new events as they arrive (woken by PostgreSQL's NOTIFY, polling on
SQLite). ``serve --role projections`` runs one alone; ``lag()`` is events behind, by name.

(Minimal shape agreed between branches: ``start()``, ``stop()``, ``lag()``.)
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("tradetape.projections")


class ProjectionWorker:
    def __init__(self, projections: Any, poll: float = 1.0):
        """``projections``: ``projections.supervisor.SupervisedProjections`` (or anything
        with ``follow(stop, poll=)``, ``catch_up()``, ``lag()`` and ``problems()``)."""
        self.projections, self.poll = projections, poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tradetape-projections",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.projections.follow(self._stop, poll=self.poll)
            except Exception as error:  # e.g. the database away: try again shortly
                log.warning("projections: %s: %s", type(error).__name__, error)
                self._stop.wait(self.poll)

    def stop(self) -> None:
        """Let the batch under way commit, then catch up with the log once more."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.projections.catch_up()

    def lag(self) -> dict[str, int]:
        return self.projections.lag()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

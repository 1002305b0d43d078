"""Scheduled backups from the server: ``TRADETAPE_BACKUP_DIR`` and ``TRADETAPE_BACKUP_EVERY``
(hours; off when unset). A backup is due when the folder's newest scheduled backup is that
old (or there is none), so a restarted server neither skips nor doubles one; after each
backup the retention (``application.backup_retention``) is applied to the folder."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from application.backup_retention import Retention, backup_name, prune, time_of
from domain.errors import DomainError
from domain.ports import Clock

DIR_ENV, EVERY_ENV = "TRADETAPE_BACKUP_DIR", "TRADETAPE_BACKUP_EVERY"
MAX_HOURS = 24 * 366
log = logging.getLogger("tradetape.backup")


@dataclass(frozen=True)
class BackupPlan:
    folder: Path
    every: timedelta


def plan_from_environ(environ: Mapping[str, str]) -> BackupPlan | None:
    every, folder = environ.get(EVERY_ENV, "").strip(), environ.get(DIR_ENV, "").strip()
    if not every:
        return None
    try:
        hours = float(every)
    except ValueError:
        hours = float("nan")
    if not 0 < hours <= MAX_HOURS:  # NaN fails too
        raise DomainError(f"{EVERY_ENV}={every!r}: a number of hours above 0 and at most "
                          f"{MAX_HOURS}", code="INVALID_SETTING", field=EVERY_ENV)
    if not folder:
        raise DomainError(f"{EVERY_ENV} is set but {DIR_ENV} (the folder backups go to) is "
                          "not", code="INVALID_SETTING", field=DIR_ENV)
    return BackupPlan(Path(folder), timedelta(hours=hours))


class ScheduledBackups:
    """``make(path)`` writes one backup; run in a thread of its own by :meth:`start`."""

    def __init__(self, plan: BackupPlan, make: Callable[[Path], object], clock: Clock,
                 retention: Retention | None = None):
        self.plan, self.make, self.clock = plan, make, clock
        self.retention = retention or Retention()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due_in(self) -> timedelta:
        """How long until the next backup is due (zero or less: now)."""
        folder = self.plan.folder
        times = [t for p in folder.iterdir() if (t := time_of(p.name))] if folder.is_dir() else []
        if not times:
            return timedelta(0)
        return max(times) + self.plan.every - self.clock.now()

    def run_due(self) -> Path | None:
        """One backup and the retention, if one is due; the new file or None."""
        if self.due_in() > timedelta(0):
            return None
        self.plan.folder.mkdir(parents=True, exist_ok=True)
        path = self.plan.folder / backup_name(self.clock.now())
        self.make(path)
        for gone in prune(self.plan.folder, self.retention):
            log.info("backup retention removed %s", gone.name)
        log.info("backup written: %s", path)
        return path

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduled backups",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
                wait = self.due_in().total_seconds()
            except Exception as error:  # one line, then try again later; never a crash
                log.error("scheduled backup failed: %s: %s", type(error).__name__, error)
                wait = min(self.plan.every.total_seconds(), 600.0)
            self._stop.wait(min(max(wait, 1.0), 60.0))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop waiting; a backup being written is finished first (up to ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

"""Projections that keep going when one of them cannot.

All healthy projections run together (one read of the log, one transaction a batch, see
``runner``). When a batch fails, the runner's state is dropped and each projection is tried
on its own: those that advance carry on together, the one that cannot is *stuck*. A stuck
projection is taken one event at a time up to the event it cannot apply, then left at that
position with its error, and tried again later (after 1, 2, 4 ... up to 300 seconds); once
it reaches the log's head it runs with the others again. Nothing here ever raises to the
caller: a server's logins, commands and trading never wait on a projection that cannot
advance, and its health shows which one is stuck, where and why.

A stuck projection is also written to the ``projection_faults`` table (removed when it
recovers), so ``tradetape projections status`` in another process shows it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application

from projections.framework import Projection
from projections.runner import (
    CATCH_UP_BATCH,
    DEFAULT_BATCH,
    Projector,
    Survivors,
    follow_log,
)
from projections.store import ViewStore, now
from projections.tables import storable, unstored

log = logging.getLogger(__name__)
FAULTS = "projection_faults"
FIRST_RETRY, LAST_RETRY = 1.0, 300.0  # seconds
MAX_ERROR_CHARS = 300


@dataclass
class Stuck:
    """A projection that cannot advance: applied up to ``position``; ``failing_position``
    is the first event it could not apply (None when it failed before reading any)."""

    name: str
    position: int
    error: str
    since: str
    failing_position: int | None = None
    attempts: int = 1
    retry_at: float = 0.0
    needs_rebuild: bool = False

    def as_dict(self, clock: float) -> dict[str, Any]:
        return {"name": self.name, "position": self.position,
                "failing_position": self.failing_position, "error": self.error,
                "since": self.since, "attempts": self.attempts,
                "needs_rebuild": self.needs_rebuild,
                "next_retry_in_s": round(max(0.0, self.retry_at - clock), 1)}


def describe(error: BaseException) -> str:
    """The error's kind and first line: a database error's detail lines (which may quote
    row values) and the traceback stay out of health answers and logs."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text[:MAX_ERROR_CHARS]


class SupervisedProjections:
    def __init__(self, app: Application, store: ViewStore,
                 classes: Sequence[type[Projection]], *, batch_size: int = DEFAULT_BATCH,
                 max_batch: int | None = CATCH_UP_BATCH,
                 clock: Callable[[], float] = time.monotonic,
                 report: Callable[[str], None] | None = None,
                 check_log: Callable[[int], Any] | None = None,
                 survivors: Survivors | None = None):
        """``survivors``: told after every batch (``Projector``'s): a follower process's
        ``StepSurvivors``."""
        self.app, self.store, self.batch_size = app, store, batch_size
        self.survivors = survivors
        self.max_batch = max_batch  # far behind, batches up to this (None: ``batch_size``)
        self.classes = list(classes)
        self.clock, self.report = clock, report or (lambda text: None)
        self.check_log = check_log
        self.stuck: dict[str, Stuck] = {}
        self._projector: Projector | None = None
        # Positions as last seen, for health checks on other threads: they never touch the
        # store's connection, which the catching-up thread is using.
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()  # ``stuck`` is read by health checks on other threads

    # --- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Rebuild the views an older version made (another shape). One that cannot be
        rebuilt is stuck and reported: it never keeps the others (or a server) from
        starting."""
        for cls in self.classes:  # an earlier process's report: found again if still true
            self._clear_fault(cls.name)
        stored = self.store.tracking()
        changed = [cls for cls in self.classes
                   if cls.name in stored and stored[cls.name].schema_hash != cls.schema()
                   and not self._upgraded(cls, stored[cls.name].schema_hash)]
        if changed:
            self.report("read models made by another version, rebuilding: "
                        + ", ".join(cls.name for cls in changed))
        for cls in changed:
            try:
                self._rebuild(cls)
            except Exception as error:
                self._stick(cls, error, needs_rebuild=True)
        try:  # tables made and state loaded now: readers may come before the first catch-up
            self._projector = self._new_projector(self.healthy())
        except Exception:
            self._isolate(self.healthy())

    def _upgraded(self, cls: type[Projection], stored_hash: str) -> bool:
        """Upgraded in place (``Projection.upgrade``); a failure leaves it to the rebuild."""
        try:
            done = cls.upgrade(self.store, stored_hash)
        except Exception as error:  # any: the rebuild still gives the right tables
            log.warning("upgrading %s in place failed, rebuilding it: %s", cls.name, error)
            return False
        if done:
            self.report(f"read models made by another version, upgraded in place: {cls.name}")
        return done

    def _rebuild(self, cls: type[Projection]) -> None:
        from projections.rebuild import rebuild

        # check_log: a rebuild refuses a log whose seals do not hold (the audit chain's
        # refusal, AUDIT_CHAIN_DISAGREES, leaves that projection stuck and red, not the server)
        rebuild(self.app, self.store, [cls], check_log=self.check_log)

    # --- advancing ------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply what is new to every healthy projection, then try the stuck ones that are
        due. Returns how many events the healthy ones read."""
        read = self._advance_healthy()
        self._retry_due()
        return read

    def healthy(self) -> list[type[Projection]]:
        return [cls for cls in self.classes if cls.name not in self.stuck]

    def _advance_healthy(self) -> int:
        classes = self.healthy()
        if not classes:
            return 0
        try:
            if self._projector is None:
                self._projector = self._new_projector(classes)
            read = self._projector.catch_up()
            self._known.update(self._projector.positions())
            return read
        except Exception as error:
            # Its state is ahead of what was committed: start again from the tables.
            self._projector = None
            log.warning("a projection batch failed (%s); running each projection on its "
                        "own to find which", describe(error))
            return self._isolate(classes)

    def _isolate(self, classes: list[type[Projection]]) -> int:
        read = 0
        for cls in classes:
            try:
                projector = self._new_projector([cls])
                read = max(read, projector.catch_up())
                self._known.update(projector.positions())
            except Exception as error:
                self._stick(cls, error)
        return read

    def _new_projector(self, classes: Sequence[type[Projection]],
                       batch_size: int | None = None) -> Projector:
        projector = Projector(self.app, self.store, [cls() for cls in classes],
                              batch_size=batch_size or self.batch_size,
                              max_batch=None if batch_size else self.max_batch,
                              survivors=self.survivors)
        projector.start()
        self._known.update(projector.positions())
        return projector

    # --- stuck projections ----------------------------------------------------------------

    def _stick(self, cls: type[Projection], error: Exception, *,
               needs_rebuild: bool = False) -> None:
        needs_rebuild = needs_rebuild or (
            getattr(error, "code", None) == "PROJECTION_SCHEMA_CHANGED")
        if not needs_rebuild:
            error = self._step_to_failure(cls) or error
        position = self._position(cls.name)
        stuck = Stuck(cls.name, position, describe(error), now(),
                      self._next_position(position), needs_rebuild=needs_rebuild)
        stuck.retry_at = self.clock() + FIRST_RETRY
        with self._lock:
            self.stuck[cls.name] = stuck
        self._projector = None
        log.error("projection %s cannot advance past position %d: %s (retrying in %.0fs)",
                  cls.name, position, stuck.error, FIRST_RETRY)
        self._save_fault(stuck)

    def _step_to_failure(self, cls: type[Projection]) -> Exception | None:
        """Apply, one event a transaction, every event before the one that fails, so the
        stuck position is exact; returns that failure (None if it went through)."""
        try:
            page = self._new_reader().page(self._position(cls.name), self.batch_size)
            if page:  # no further than the batch that failed
                self._new_projector([cls], batch_size=1).catch_up(until=page[-1][0])
        except Exception as error:
            return error
        return None

    def _retry_due(self) -> None:
        clock = self.clock()
        for stuck in list(self.stuck.values()):
            if clock < stuck.retry_at:
                continue
            cls = next(c for c in self.classes if c.name == stuck.name)
            try:
                if stuck.needs_rebuild:
                    self._rebuild(cls)
                projector = self._new_projector([cls])
                projector.catch_up()
                self._known.update(projector.positions())
            except Exception as error:
                self._still_stuck(stuck, error)
                continue
            with self._lock:
                del self.stuck[stuck.name]
            self._projector = None  # it runs with the others again
            log.warning("projection %s advances again, at position %d", stuck.name,
                        self._position(stuck.name))
            self._clear_fault(stuck.name)

    def _still_stuck(self, stuck: Stuck, error: Exception) -> None:
        stuck.attempts += 1
        stuck.error = describe(error)
        stuck.position = self._position(stuck.name)
        stuck.failing_position = self._next_position(stuck.position)
        wait = min(LAST_RETRY, FIRST_RETRY * 2 ** (stuck.attempts - 1))
        stuck.retry_at = self.clock() + wait
        log.error("projection %s still cannot advance past position %d: %s (retry %d in "
                  "%.0fs)", stuck.name, stuck.position, stuck.error, stuck.attempts, wait)
        self._save_fault(stuck)

    def retry_now(self) -> None:
        """Make every stuck projection due (an operator fixed the cause)."""
        for stuck in self.stuck.values():
            stuck.retry_at = 0.0

    def _position(self, name: str) -> int:
        try:
            row = self.store.tracking().get(name)
        except Exception:  # the database itself is unwell: report what we can
            return self.stuck[name].position if name in self.stuck else 0
        return row.position if row is not None else 0

    def _next_position(self, position: int) -> int | None:
        try:
            page = self._new_reader().page(position, 1)
        except Exception:
            return None
        return page[0][0] if page else None

    def _new_reader(self):
        from projections.reader import LogReader

        return LogReader(self.app, self.store)

    # --- what health checks and status read ------------------------------------------------

    def problems(self) -> list[dict[str, Any]]:
        clock = self.clock()
        with self._lock:
            return [s.as_dict(clock) for s in self.stuck.values()]

    def positions(self) -> dict[str, int]:
        projector = self._projector
        current = projector.positions() if projector is not None else {}
        with self._lock:
            stuck = {name: s.position for name, s in self.stuck.items()}
        known = {**self._known, **current, **stuck}
        return {c.name: known.get(c.name, 0) for c in self.classes}

    def lag(self) -> dict[str, int]:
        head = self.app.recorder.max_notification_id() or 0
        return {name: head - position for name, position in self.positions().items()}

    # --- following --------------------------------------------------------------------------

    def follow(self, stop: threading.Event, *, poll: float = 1.0,
               on_batch: Callable[[int], None] | None = None) -> None:
        """Catch up, then wait for new events (or the next retry) until ``stop`` is set."""
        follow_log(self.app, self.store, self.catch_up, stop, poll=poll, on_batch=on_batch)

    # --- the faults table ---------------------------------------------------------------------

    def _save_fault(self, stuck: Stuck) -> None:
        try:
            save_fault(self.store, stuck)
        except Exception as error:  # the report must never become a second failure
            log.warning("could not record projection %s as stuck: %s", stuck.name,
                        describe(error))

    def _clear_fault(self, name: str) -> None:
        try:
            with self.store.transaction() as cur:
                if self.store.table_exists(FAULTS):
                    self.store.execute(cur, f"DELETE FROM {self.store.q(FAULTS)} "
                                            "WHERE name = ?", (name,))
        except Exception as error:
            log.warning("could not clear projection %s's fault: %s", name, describe(error))


_FAULT_COLUMNS = ("name", "position", "failing_position", "error", "since", "attempts",
                  "updated_at")


def save_fault(store: ViewStore, stuck: Stuck) -> None:
    with store.transaction() as cur:
        store.lock_ddl(cur)
        store.execute(cur, f"CREATE TABLE IF NOT EXISTS {store.q(FAULTS)} ("
                           "name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
                           "failing_position BIGINT, error TEXT NOT NULL, since TEXT NOT NULL, "
                           "attempts BIGINT NOT NULL, updated_at TEXT NOT NULL)")
        others = ", ".join(f"{c} = excluded.{c}" for c in _FAULT_COLUMNS[1:])
        store.execute(cur, f"INSERT INTO {store.q(FAULTS)} ({', '.join(_FAULT_COLUMNS)}) "
                           f"VALUES ({', '.join('?' * len(_FAULT_COLUMNS))}) "
                           f"ON CONFLICT (name) DO UPDATE SET {others}",
                      (stuck.name, stuck.position, stuck.failing_position,
                       storable(stuck.error), stuck.since, stuck.attempts, now()))


def faults(store: ViewStore) -> dict[str, dict[str, Any]]:
    """The stuck projections a runner or server recorded, by name."""
    if not store.table_exists(FAULTS):
        return {}
    rows = store.query(f"SELECT {', '.join(_FAULT_COLUMNS)} FROM {store.q(FAULTS)}")
    found = {row[0]: dict(zip(_FAULT_COLUMNS, row, strict=True)) for row in rows}
    for fault in found.values():
        fault["error"] = unstored(fault["error"])
    return found

"""The composition root's read models: the projections followed in the server process
(``--role all``), read from another one (``--role api``), or followed alone
(``--role projections``), and rebuilds asked for from the API."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from application.bootstrap_audit import seal_check
from application.bootstrap_stores import open_trading
from application.settings import parse_database_url, prepare

if TYPE_CHECKING:
    from application.trading import Trading


class _InProcessReadModels:
    """Every projection followed inside the server process (see ``projections/``).

    Read models are disposable: views whose tables an older version made (another shape)
    are rebuilt from the events at start, rather than keeping the server down until an
    operator runs ``tradetape projections rebuild``. A projection that cannot advance (or
    be rebuilt) is reported by ``problems()`` and retried, never raised: the server starts
    and serves with the others (``projections.supervisor``)."""

    def __init__(self, trading: Trading, database):
        import sys

        from projections.registry import PROJECTIONS
        from projections.store import open_view_store
        from projections.supervisor import SupervisedProjections

        self.trading, self._store = trading, open_view_store(database)
        self.projections = SupervisedProjections(
            trading, self._store, list(PROJECTIONS.values()),
            report=lambda text: sys.stderr.write(text + "\n"),
            check_log=seal_check(trading, database.url))
        self._book_offered = threading.Event()  # (set at once where there is no thread)
        self._opening = None
        if self._store.kind == "postgres":
            # Their open (every table read in one snapshot: ~3 s at 10M events, two thirds
            # of it waiting on PostgreSQL) runs beside the engine's load of its bots, which
            # waits only for the paper book (loaded first). The store's connection is this
            # thread's alone until ``_opened``; SQLite's is shared with the restart book.
            from application.background_open import BackgroundOpen
            from projections.runner import book_offered

            book_offered(self._store, self._book_offered)
            self._opening = BackgroundOpen(self.projections.start, name="views-open",
                                           done=self._book_offered)
        else:
            self.projections.start()
            self._book_offered.set()

    @property
    def store(self):
        """The views' store, once the projections' open no longer uses it."""
        self._opened()
        return self._store

    def _opened(self) -> None:
        """The projections' open is over (it raises here what it raised)."""
        if self._opening is not None:
            self._opening.wait()

    def wait_open(self) -> None:
        """Until the views' tables exist and hold what the open found (readers of their
        own connections, e.g. the api's read side, wait here at their first read)."""
        self._opened()

    def is_open(self) -> bool:
        """Whether that open is over (without waiting for it)."""
        return self._opening is None or self._opening.finished

    def catch_up(self) -> int:
        self._opened()
        return self.projections.catch_up()

    def lag(self) -> dict[str, int]:
        self._opened()
        return self.projections.lag()

    def problems(self) -> list[dict]:
        self._opened()
        return self.projections.problems()

    def close(self) -> None:
        if "restart_book" in self.__dict__:
            self.restart_book.close()
        if self._opening is not None:
            self._opening.join()  # (what it raised, the start raised already)
        self._store.close()

    @cached_property
    def restart_book(self):
        """What the paper runner restores at start, from the ``paper_book`` projection's
        tables and the events after their position (projections/paper_book.py): the copy
        the projector loaded, once it offered it."""
        from projections.paper_book import BookAtHead

        return _AfterOffer(BookAtHead(self.trading, self._store), self._book_offered)


class _AfterOffer:
    """A restart book asked for once the projector offered its copy of the paper book (or
    its open ended without): else it would read the tables a second time."""

    def __init__(self, book, offered):
        self.book, self.offered = book, offered

    def __call__(self):
        self.offered.wait()
        return self.book()

    def close(self) -> None:
        self.book.close()


class _SharedReadModels:
    """The views another process keeps up to date (``serve --role projections``): this
    one only reads them, and tells their lag from their tracking rows."""

    WAIT_SECONDS = 2.0  # the longest a command's answer waits for the views
    # Looked at again without a word from the views: while LISTEN is not (yet) in place,
    # or from a projections process that does not NOTIFY (elsewhere than PostgreSQL)
    RECHECK_LISTENING, RECHECK_POLLING = 0.5, 0.02  # seconds

    def __init__(self, trading: Trading, database):
        import threading

        from projections.store import open_view_store

        self.trading, self.database = trading, database
        self.store = open_view_store(database)
        self._moved = threading.Condition()  # the views committed a batch (their NOTIFY)
        self._moves = 0
        self._listener = None
        self._tracked = False  # the tracking table exists (it is never dropped)

    def catch_up(self) -> int:
        """Wait (a little) until the views hold what was written so far: an answer made
        after a command, or an event published, reads its own writes. Woken by the views'
        NOTIFY, the tracking rows are read once per batch they commit, not every 20 ms."""
        import time

        self._follow()
        head = self.trading.recorder.max_notification_id() or 0
        deadline = time.monotonic() + self.WAIT_SECONDS
        recheck = self.RECHECK_LISTENING if self._listener else self.RECHECK_POLLING
        while True:
            with self._moved:
                seen = self._moves
            if max(self._behind(head).values(), default=0) == 0:
                return 0
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            with self._moved:  # a batch committed since ``seen``: at once
                self._moved.wait_for(lambda seen=seen: self._moves != seen,
                                     min(left, recheck))

    def _follow(self) -> None:
        """LISTEN to the views' batches (PostgreSQL), from the first catch-up on."""
        if self._listener is not None or self.store.kind != "postgres":
            return
        from adapters.event_store.notify import EventListener

        self._listener = EventListener(self.database, self.store.channel, self._views_moved)
        self._listener.start()

    def _views_moved(self) -> None:
        with self._moved:
            self._moves += 1
            self._moved.notify_all()

    def lag(self) -> dict[str, int]:
        return self._behind(self.trading.recorder.max_notification_id() or 0)

    def _behind(self, head: int) -> dict[str, int]:
        from projections.registry import PROJECTIONS
        from projections.store import TRACKING

        self._tracked = self._tracked or self.store.table_exists(TRACKING)
        rows = (self.store.query(f"SELECT name, position FROM {self.store.q(TRACKING)}")
                if self._tracked else [])
        applied = dict(rows)
        return {name: max(head - int(applied.get(name, 0)), 0) for name in PROJECTIONS}

    def problems(self) -> list[dict]:
        from projections.supervisor import faults

        return list(faults(self.store).values())

    @cached_property
    def restart_book(self):
        """The paper book the projections process keeps (see ``_InProcessReadModels``)."""
        from projections.paper_book import BookAtHead

        return BookAtHead(self.trading, self.store)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        if "restart_book" in self.__dict__:
            self.restart_book.close()
        self.store.close()


def open_projection_worker(database_url: str | None):
    """``serve --role projections``: every projection, followed in this process alone.
    Returns the worker and what to close after it."""
    import sys

    from application.paper_heap import StepSurvivors
    from application.projection_worker import ProjectionWorker
    from projections.registry import PROJECTIONS
    from projections.store import open_view_store
    from projections.supervisor import SupervisedProjections

    database = parse_database_url(database_url)
    prepare(database)
    trading = open_trading(database_url)
    store = open_view_store(database)
    # What its batches leave alive (every projection's state: ~120,000 tracked objects at
    # 10,000 bots) frozen after each, so the collector's passes walk only what is new: on
    # a 58,600-event take-profit wave 0.19 -> 0.004 s of the collector, process 3.10 ->
    # 2.88 s of processor time (scripts/bench_wave.py, alternated twice).
    projections = SupervisedProjections(
        trading, store, list(PROJECTIONS.values()),
        report=lambda text: sys.stderr.write(text + "\n"),
        check_log=seal_check(trading, database.url), survivors=StepSurvivors())
    projections.start()
    # Alone in its process, nothing wakes it: it looks at the log five times a second.
    return ProjectionWorker(projections, poll=0.2), [store, trading]


def open_projection_rebuilds(trading, database, ids):
    """Rebuilds asked for from the API, on a view-store connection of their own, refusing a
    log whose seals do not hold (as ``tradetape projections rebuild`` does)."""
    from application.projection_rebuilds import ProjectionRebuilds
    from domain.errors import DomainError
    from projections.rebuild import rebuild
    from projections.registry import select
    from projections.runner import ProjectionError
    from projections.store import open_view_store

    def known(names):
        try:
            return [cls.name for cls in select(list(names or []))]
        except ProjectionError as error:
            raise DomainError(error.message, code=error.code, field="names") from None

    def run(names, on_progress):
        store = open_view_store(database)
        try:
            return rebuild(trading, store, select(list(names)), on_progress=on_progress,
                           check_log=seal_check(trading, database.url))
        finally:
            store.close()

    return ProjectionRebuilds(run, known, ids)

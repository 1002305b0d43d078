"""Driving projections over the Trading log: catch up in batches, follow, rebuild, time travel.

One read of the log feeds every projection run together; each batch (one page of
notifications) is committed in one transaction holding every projection's row changes and
its new tracking position. A crash loses at most the batch in flight, and the restarted
runner reloads each projection's state from its tables and carries on after its position.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from eventsourcing.application import Application

from application.collector import collector_paused
from application.settings import _connect_kwargs
from projections.facts import Fact, FactDecoder, Route
from projections.framework import Projection
from projections.ledger import Ledger
from projections.paper_book import BookAtHead, PaperBook, offer_loaded, withdraw_loaded
from projections.reader import (
    LogReader,
    LogRow,
    Pages,
    ReadAhead,
    RecordedTimes,
    read_ahead_possible,
)
from projections.shared_books import share_books
from projections.store import (
    SHADOW,
    DuplicateKey,
    PostgresViewStore,
    ProjectionConflict,
    SQLiteViewStore,
    ViewStore,
)
from projections.tables import Changes, Frozen, Table
from projections.writer import SyncWriter, writer_for

DEFAULT_BATCH = 2000
# The page size of a follower far behind (its pages read meanwhile joined: batches of up to
# twice this). A batch costs its events plus a part that does not grow with them: marking
# every open deal of a pair whose price moved, upserting those deals' and their bots' rows
# (at 10,000 bots, ~50,000 rows a batch). With 2,000-event batches that part was most of
# the work (26 rows written an event, 385 µs of processor time); taking what is there, up
# to this many, pays it once for all of them.
CATCH_UP_BATCH = 20_000
# Rows a timed batch decodes before the projections take them (``_apply_timed``): few enough
# that their facts are still in the processor's caches, enough that the clocks cost little.
TIMED_ROWS = 128
log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
Handler = Callable[[Fact, Changes], None]


class ProjectionError(Exception):
    """A problem running projections that the user can act on; ``code`` names it."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def duplicate_key(error: DuplicateKey) -> ProjectionError:
    """A rebuild's rows broke a key (two rows of one key, found when it was built after
    loading): the rebuild ends there, the live tables untouched."""
    return ProjectionError(
        "REBUILD_DUPLICATE_KEY",
        f"the rebuilt {error.table.removesuffix(SHADOW)} holds two rows of one key "
        f"({error.detail}): nothing was swapped in, the tables in use are unchanged")


@dataclass
class Tracked:
    """A projection run by a projector. ``position``: the last event applied to its state in
    memory (the next batch starts after it); ``committed``: the last one whose rows are
    committed, what ``positions`` (and so ``lag`` and ``/health``) say: a batch made but
    still waiting for its commit (a writer thread's queue) is not yet readable."""

    projection: Projection
    position: int = 0
    generation: int = 1
    committed: int = 0


@dataclass
class _Run:
    """What one run of batches read, and whether it reached the end."""

    read: int = 0
    finished: bool = False


class Survivors(Protocol):
    def after_step(self) -> None: ...


# Those waiting for a store's paper book to be offered (``book_offered``), by store.
_OFFER_WAITERS: dict[ViewStore, list[threading.Event]] = {}
_OFFER_LOCK = threading.Lock()


def book_offered(store: ViewStore, event: threading.Event) -> None:
    """Set ``event`` when a projector of ``store`` next offers the paper book it loaded
    (``offer_loaded``): a start whose projections open on another thread waits for that,
    not for all of them, before it asks for its restart book."""
    with _OFFER_LOCK:
        _OFFER_WAITERS.setdefault(store, []).append(event)


def _tell_offered(store: ViewStore) -> None:
    with _OFFER_LOCK:
        waiting = _OFFER_WAITERS.pop(store, [])
    for event in waiting:
        event.set()


class Projector:
    """Runs ``projections`` over ``app``'s log into ``store``.

    ``shadow=True`` writes into fresh ``<table>__rebuild`` tables from position 0 and tracks
    positions in memory only (a rebuild swaps them in at the end). ``accept`` keeps only the
    facts it returns True for (time travel) while positions still advance over all."""

    def __init__(self, app: Application, store: ViewStore, projections: Sequence[Projection],
                 *, batch_size: int = DEFAULT_BATCH, shadow: bool = False,
                 accept: Callable[[Fact], bool] | None = None, max_batch: int | None = None,
                 survivors: Survivors | None = None):
        """``max_batch``: when far behind, pages of up to this many events (whatever is
        there) instead of ``batch_size``, joined with those read meanwhile up to twice
        that: see ``CATCH_UP_BATCH``. ``survivors``: told at the end of every batch, with
        the collector still paused (a follower's ``StepSurvivors``: what the batch left
        alive, the projections' state, frozen out of the collector's passes)."""
        if not projections:
            raise ValueError("no projections to run")
        self.app, self.store, self.batch_size = app, store, batch_size
        self.survivors = survivors
        self.max_batch = max(batch_size, max_batch or batch_size)
        self.suffix = SHADOW if shadow else ""
        self.shadow, self.accept = shadow, accept
        self.decode = FactDecoder(app.mapper)
        self.reader = LogReader(app, store)
        self.tracked = [Tracked(p) for p in projections]
        self.events_read = 0
        self.decode_seconds = 0.0
        self.unit_seconds: dict[str, float] = {}  # of Python spent on each (``costs``)
        self.cpu_seconds: dict[str, float] = {}  # the same, of this thread's processor time
        self.timed = False  # projection by projection, each timed (``costs``): slower
        # Shadow tables made without their primary key (``create_shadow``), by name: the
        # table and its generation.
        self.keyless: dict[str, tuple[Table, int]] = {}
        self._started = False
        self._offered_until: int | None = None  # the paper book offered (``_start_live``)

    def start(self) -> None:
        """Create what is missing, check table shapes, load each projection's state."""
        if self.shadow:
            self.create_shadow()
        else:
            self._start_live()
        self._started = True

    def _start_live(self) -> None:
        for t in self.tracked:
            p = t.projection
            self.store.register(p.name, self.app.name, p.tables, p.schema())
        if self.store.before_select is not None:  # (a recovery: nothing left to write)
            self.store.before_select()
        # The tracking rows and every table in one snapshot of the store: a projections
        # process committing meanwhile cannot leave a state ahead of its position (so the
        # paper book loaded here can serve this process's ``BookAtHead`` too).
        self._offered_until = None
        with self.store.consistent_reads():
            rows = self.store.tracking()
            # The paper book first, offered as soon as it is loaded: a start waiting for it
            # (``book_offered``) loads its bots while the other projections load here.
            for t in sorted(self.tracked, key=lambda t: not isinstance(t.projection, PaperBook)):
                row = rows[t.projection.name]
                if row.schema_hash != t.projection.schema():
                    raise ProjectionError(
                        "PROJECTION_SCHEMA_CHANGED",
                        f"the {row.name} tables were made by another version of tradetape: "
                        f"run `tradetape projections rebuild {row.name}`")
                t.position, t.generation = row.position, row.generation
                t.committed = row.position
                t.projection = type(t.projection)()
                t.projection.load(self.store)
                if isinstance(t.projection, PaperBook):
                    offer_loaded(self.store, t.projection, t.position)
                    self._offered_until = t.position + BookAtHead.RELOAD_AFTER
                    _tell_offered(self.store)

    def create_shadow(self, keys_after_load: bool = False) -> None:
        """Fresh, empty ``<table>__rebuild`` tables; positions back to 0. With
        ``keys_after_load`` (where the store can: PostgreSQL), without their primary keys:
        a table only ever inserted into gets its key once filled (``finish_shadow``), one
        sort instead of a B-tree kept up row by row; the first batch that upserts, deletes
        or patches a table's rows builds its key first (``_apply_page``), so a table that
        does gets it early and keeps it. Two rows of one key found then end the rebuild
        (``REBUILD_DUPLICATE_KEY``) before anything is swapped in."""
        rows = self.store.tracking()
        keyless = keys_after_load and self.store.KEYS_AFTER_LOAD
        self.keyless = {}
        with self.store.transaction() as cur:
            for t in self.tracked:
                live = rows.get(t.projection.name)
                t.generation = (live.generation if live else 0) + 1
                t.position = t.committed = 0
                for table in t.projection.tables:  # indexes once filled: faster than kept up
                    self.store.create_table(cur, table, SHADOW, t.generation, indexes=False,
                                            key=not keyless)
                    if keyless:
                        self.keyless[table.name] = (table, t.generation)
        self._started = True

    def finish_shadow(self) -> None:
        """Index the filled shadow tables, and build the keys still missing: one sort
        each, faster than keeping the indexes up to date while filling them."""
        try:
            self.store.index_filled([(table, SHADOW, t.generation) for t in self.tracked
                                     for table in t.projection.tables],
                                    frozenset(self.keyless))
        except DuplicateKey as error:
            raise duplicate_key(error) from error
        self.keyless = {}

    def resume_shadow(self, positions: dict[str, int] | None = None,
                      keyless: Sequence[str] = ()) -> None:
        """Carry on with shadow tables someone else filled: up to ``positions`` (0 when
        not given: the tables are still empty); ``keyless``: the names of those still
        without their primary key (``create_shadow``)."""
        rows = self.store.tracking()
        self.keyless = {}
        for t in self.tracked:
            t.position = t.committed = (positions or {}).get(t.projection.name, 0)
            t.generation = rows[t.projection.name].generation + 1  # as create_shadow made
            t.projection = type(t.projection)()
            t.projection.load(self.store, SHADOW)
            self.keyless.update((table.name, (table, t.generation))
                                for table in t.projection.tables if table.name in keyless)
        self._started = True

    # --- catching up ----------------------------------------------------------------------

    def catch_up(self, *, until: int | None = None, on_progress: Progress | None = None) -> int:
        """Apply every event after each projection's position (up to ``until``), one
        transaction per batch. Returns how many events were read."""
        if not self._started:
            self.start()
        read = 0
        head = self.head() if on_progress else 0
        while True:
            behind = self.head() - min(t.position for t in self.tracked)
            # A writer thread (and its connection) pays off only with batches to overlap;
            # so does reading the next page ahead.
            far = behind > 2 * self.batch_size
            done = self._catch_up(far, until, on_progress, head)
            read += done.read
            if done.finished:
                return read

    def _catch_up(self, far: bool, until: int | None, on_progress: Progress | None,
                  head: int) -> _Run:
        """Batches until the log (or ``until``) ends, or, not ``far`` behind, until a page
        comes full while the log is far ahead (a wave appended meanwhile: the caller goes
        on ``far``, with read-ahead, larger batches and the writer's thread)."""
        run = _Run()
        writer = writer_for(self.store) if far else SyncWriter(self.store)
        self.store.before_select = writer.drain
        # A rebuild has a known end: the collector waits until then (reads allocate too).
        whole = collector_paused() if self.shadow else contextlib.nullcontext()
        try:
            with whole:
                while True:
                    start = min(t.position for t in self.tracked)
                    size = self.max_batch if far else self.batch_size
                    pages = (ReadAhead(self.reader, start, size, until,
                                       join=self.max_batch > self.batch_size)
                             if far and read_ahead_possible(self.reader)
                             else Pages(self.reader, start, size, until))
                    try:
                        for page in pages:
                            with collector_paused():
                                writer.submit(self._apply_page(page))
                                if self.survivors is not None:
                                    self.survivors.after_step()
                            run.read += len(page)
                            self.events_read += len(page)
                            if on_progress:
                                on_progress(page[-1][0], max(head, page[-1][0]))
                            if (not far and len(page) == size and until is None
                                    and self.head() - page[-1][0] > 2 * self.batch_size):
                                writer.drain()
                                return run  # (not finished: again, far)
                        writer.drain()
                        run.finished = True
                        return run
                    except ProjectionConflict as conflict:
                        if self.shadow:
                            raise
                        log.warning("%s; reloading its state", conflict)
                        writer.recover()
                        self._start_live()
                    finally:
                        if isinstance(pages, ReadAhead):
                            pages.close()
        finally:
            self.store.before_select = None
            writer.close()

    def _apply_page(self, page: Sequence[LogRow]) -> Callable[[ViewStore], None]:
        """Apply a page to the projections' state; returns the job that commits it.

        Each row is decoded and goes to every projection that reads its kind while it is
        fresh in the processor's caches (decoding the page first, or going through it once
        per projection, costs about a third more). With ``timed`` set, the same rows go a
        few at a time, decoded, then projection by projection, each timed on its own: what
        :meth:`costs` reports and a rebuild shares processes out by (``_apply_timed``)."""
        end = page[-1][0]
        if self._offered_until is not None and end > self._offered_until:
            withdraw_loaded(self.store)  # too far back to be taken now: not kept
            self._offered_until = None
        shared = self.shares_books()
        active = [t for t in self.tracked if t.position < end]  # others are past this page
        outs = [Changes(t.projection.tables) for t in active]
        if self.timed:
            self._apply_timed(page, active, outs, shared)
        else:
            self._apply_rows(page, active, outs)
        moves = []
        for t, out in zip(active, outs, strict=True):
            t.projection.end_batch(out)
            moves.append((t.projection.name, t.generation, t.position, out.freeze()))
        for t in active:  # only once every projection took the page
            t.position = end
        shadow, suffix = self.shadow, self.suffix
        keys = self._keys_needed(moves) if self.keyless else []

        def commit(store: ViewStore) -> None:
            with store.transaction() as cur:
                store.relax(cur)
                for table, generation in keys:  # before the first write needing them
                    try:
                        store.add_key(cur, table, suffix, generation)
                    except DuplicateKey as error:
                        raise duplicate_key(error) from error
                for name, generation, start, out in moves:
                    if not shadow:
                        store.advance(cur, name, generation, start, end)
                    try:
                        store.write(cur, out, suffix)
                    except Exception as error:  # two rows of one key in a shadow (SQLite's
                        # have their keys from the start): named, not a bare IntegrityError
                        if shadow and (duplicate := store.duplicate(error)) is not None:
                            raise duplicate_key(duplicate) from error
                        raise
            for t in active:  # readable now (a writer thread commits in order)
                t.committed = end

        return commit

    def _keys_needed(self, moves: list[tuple[str, int, int, list[Frozen]]]
                     ) -> list[tuple[Table, int]]:
        """The keyless shadow tables this batch does more than insert into: their keys
        are built first (no longer keyless from here on)."""
        needed = []
        for *_, out in moves:
            for change in out:
                name = change.table.name
                if name in self.keyless and (change.gone or change.upserts or change.patches):
                    needed.append(self.keyless.pop(name))
        return needed

    def shares_books(self) -> bool:
        """Whether ledgers run here share one set of books (``shared_books.py``): they
        start to at a page where they stand at one position and are not being timed."""
        ledgers = [t for t in self.tracked if isinstance(t.projection, Ledger)]
        if any(t.projection.followers for t in ledgers):
            return True
        if len({t.position for t in ledgers}) != 1:
            return False
        leader = share_books([t.projection for t in ledgers])
        if leader is None:
            return False
        self.tracked.sort(key=lambda t: t.projection is not leader)  # it applies first
        return True

    def _apply_rows(self, page: Sequence[LogRow], active: list[Tracked],
                    outs: list[Changes]) -> None:
        accept = self.accept
        behind = min((t.position for t in active), default=0)
        level = all(t.position == behind for t in active)  # no one to skip ahead of

        def route_of(topic: str) -> Route | None:
            """Each handler of the topic's kind with its projection's changes; a fact past
            only some projections' positions, or one ``accept`` may refuse, goes to
            ``checked`` first (a call a fact: first pages of a catch-up, time travel)."""
            kind = topic.partition(":")[2]
            route = [(handler, out, t.position) for t, out in zip(active, outs, strict=True)
                     if (handler := t.projection.route(kind)) is not None]
            if not route:
                return None
            if level and accept is None:
                return [(handler, out) for handler, out, _ in route]
            return [(checked, route)]

        def checked(fact: Fact, route: list[tuple[Handler, Changes, int]]) -> None:
            if accept is None or accept(fact):
                for handler, out, after in route:
                    if fact.position > after:
                        handler(fact, out)

        # Routed by topic before decoding (``FactDecoder.dispatch``): an event no projection
        # here reads (e.g. an order's acceptance, for the ledgers) is never parsed.
        self.decode.dispatch(page, route_of, {})

    def _apply_timed(self, page: Sequence[LogRow], active: list[Tracked],
                     outs: list[Changes], shared: bool) -> None:
        """``_apply_rows``, timed by part: the same rows decoded (routed by topic first: a
        row no projection here reads is never parsed), a few at a time, each few then
        going unit by unit while fresh in the processor's caches. Decoding a whole page
        first kept 10,000 facts alive and cost about twice the real path's decoding
        (3.29 against 1.43 us an event), which the breakdown then printed."""
        clock, cpu = time.perf_counter, time.thread_time
        units = _units(active, outs, shared)
        names = ["+".join(t.projection.name for t, _ in unit) for unit in units]
        accept, decode = self.accept, self.decode
        decoding = self.decode_seconds
        unit_seconds, cpu_seconds = self.unit_seconds, self.cpu_seconds
        cpu_seconds.setdefault("", 0.0)
        for name in names:
            cpu_seconds.setdefault(name, 0.0)
            unit_seconds.setdefault(name, 0.0)

        facts: list[tuple[Fact, list[list[tuple[int, Handler, Changes]]]]] = []

        def keep(fact: Fact, route: list[list[tuple[int, Handler, Changes]]]) -> None:
            if accept is None or accept(fact):
                facts.append((fact, route))

        def route_of(topic: str) -> Route | None:
            kind = topic.partition(":")[2]
            route = [[(t.position, handler, out) for t, out in unit
                      if (handler := t.projection.route(kind)) is not None]
                     for unit in units]
            return [(keep, route)] if any(route) else None

        known: dict = {}  # by topic, for the page (``FactDecoder.dispatch``)
        for first in range(0, len(page), TIMED_ROWS):
            started, started_cpu = clock(), cpu()
            facts.clear()
            decode.dispatch(page[first:first + TIMED_ROWS], route_of, known)
            decoding += clock() - started
            now_cpu = cpu()
            cpu_seconds[""] += now_cpu - started_cpu
            for i, name in enumerate(names):
                started, started_cpu = clock(), now_cpu
                for fact, route in facts:
                    for after, handler, out in route[i]:
                        if fact.position > after:
                            handler(fact, out)
                unit_seconds[name] += clock() - started
                now_cpu = cpu()
                cpu_seconds[name] += now_cpu - started_cpu
        self.decode_seconds = decoding

    def cpu_costs(self) -> dict[str, float]:
        """As :meth:`costs`, in this thread's processor time: without the time the reader
        and writer threads held the interpreter meanwhile, nor waiting for a processor on
        a busy machine (the clock's figures count both; a split is chosen by those)."""
        return dict(self.cpu_seconds)

    def costs(self) -> dict[str, float]:
        """Seconds of Python each projection's handlers took over the batches run with
        ``timed`` set, and ``""``: decoding those batches, which all share. Ledgers sharing
        one set of books (``shared_books.py``) are timed as one, named ``"pnl+equity"``:
        apart, each would keep the books again (what a split must not count on)."""
        return {"": self.decode_seconds, **self.unit_seconds}

    def head(self) -> int:
        return self.reader.head()

    # --- following ------------------------------------------------------------------------

    def follow(self, stop: threading.Event, *, poll: float = 1.0,
               on_batch: Callable[[int], None] | None = None) -> None:
        """Catch up, then wait for new events (LISTEN/NOTIFY on PostgreSQL, polling on
        SQLite) until ``stop`` is set."""
        follow_log(self.app, self.store, self.catch_up, stop, poll=poll, on_batch=on_batch)

    def positions(self) -> dict[str, int]:
        """Each projection's committed position: its tables hold the log up to there (a
        batch still waiting for the writer is not counted)."""
        return {t.projection.name: t.committed for t in self.tracked}


def _units(active: list[Tracked], outs: list[Changes],
           shared: bool) -> list[list[tuple[Tracked, Changes]]]:
    """What can be timed apart: each projection, but ledgers sharing books together (the
    leader first: it calls its followers' ``before``)."""
    units: list[list[tuple[Tracked, Changes]]] = []
    books: list[tuple[Tracked, Changes]] = []
    for t, out in zip(active, outs, strict=True):
        p = t.projection
        if shared and isinstance(p, Ledger) and (p.followers or p.leader is not None):
            books.append((t, out))
        else:
            units.append([(t, out)])
    return [books, *units] if books else units


def follow_log(app: Application, store: ViewStore, catch_up: Callable[[], int],
               stop: threading.Event, *, poll: float = 1.0,
               on_batch: Callable[[int], None] | None = None) -> None:
    """``catch_up()`` until it reads nothing, then wait for new events (LISTEN/NOTIFY on
    PostgreSQL, polling on SQLite) and again, until ``stop`` is set."""
    wait = _waiter(app, store, poll)
    try:
        while not stop.is_set():
            read = catch_up()
            if read and on_batch:
                on_batch(read)
            if not read:
                wait(stop)
    finally:
        close = getattr(wait, "close", None)
        if close:
            close()


def _waiter(app: Application, store: ViewStore, poll: float):
    channel = getattr(app.recorder, "channel_name", None)
    if channel is None or not isinstance(store, PostgresViewStore):
        return lambda stop: stop.wait(poll)
    return _PostgresWaiter(store, channel, poll)


class _PostgresWaiter:
    """Sleeps until the library's NOTIFY on the events table (sent with every append) or
    ``poll`` seconds, on a connection of its own."""

    def __init__(self, store: PostgresViewStore, channel: str, poll: float):
        import psycopg
        from psycopg import sql

        self.conn = psycopg.connect(autocommit=True, **_connect_kwargs(store.env))
        self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.poll = poll

    def __call__(self, stop: threading.Event) -> None:
        waited = 0.0
        while waited < self.poll and not stop.is_set():
            step = min(0.5, self.poll - waited)  # so that ``stop`` is noticed soon
            if list(self.conn.notifies(timeout=step, stop_after=1)):
                return
            waited += step

    def close(self) -> None:
        self.conn.close()


# --- time travel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AsOf:
    """A throwaway view of the log as it stood at a moment, and the log position it
    reflects (its last event)."""

    store: ViewStore
    position: int


def view_as_of(app: Application, classes: Sequence[type[Projection]],
               moment: datetime | None = None, *, market: datetime | None = None,
               batch_size: int = 5000) -> AsOf:
    """A throwaway in-memory view made by the same projection code as the live view. The
    caller closes its store.

    ``moment`` (recorded time): the events the store had recorded at ``moment``, i.e. the
    log up to its last position recorded at or before it: what the live view showed then.
    Events recorded before recorded times were kept (and every event of a store that keeps
    none) are judged by their own time, the best known. ``market``: only events whose own
    time (market time in a backtest) is at or before it, wherever they are in the log."""
    store = SQLiteViewStore(None)
    until, accept = None, None
    if moment is not None:
        until, legacy = RecordedTimes(app).by(moment)
        if not until:  # nothing recorded by then since recorded times were kept
            until = legacy
            accept = _own_time_by(moment)
    if market is not None:
        by_market = _own_time_by(market)
        accept = by_market if accept is None else _both(accept, by_market)
    projector = Projector(app, store, [cls() for cls in classes], batch_size=batch_size,
                          accept=accept)
    projector.catch_up(until=until)
    return AsOf(store, max(projector.positions().values()))


def _own_time_by(moment: datetime) -> Callable[[Fact], bool]:
    return lambda fact: fact.time <= moment


def _both(first: Callable[[Fact], bool], second: Callable[[Fact], bool]
          ) -> Callable[[Fact], bool]:
    return lambda fact: first(fact) and second(fact)

"""Rebuilding projections: replay the whole log into shadow tables (``<table>__rebuild``),
then swap them in, every projection rebuilt in one transaction. Readers see the old tables
until that commit; a runner following the log finds the generation changed at its next batch
and reloads its state from the new tables. On PostgreSQL the shadows are made without their
primary keys: a table only ever inserted into gets its key once filled, one that is upserted,
deleted from or patched gets it before the first batch that does so
(``Projector.create_shadow``); two rows of one key end the rebuild before its swap
(``REBUILD_DUPLICATE_KEY``), the tables in use untouched.

With ``workers > 1`` (a SQLite file or PostgreSQL) the projections may be shared out between
processes, but only when that is measured to be faster: the rebuild first runs every
projection in this process over the log's first events, timing each projection's Python and
the decoding all of them share, and reads how busy the machine's processors are. Each
process would read and decode the whole log again and start cold, so splitting pays only
when the projections' own work is large beside the decoding and processors are not all
taken by others (:func:`choose`). The processes carry on from where that first part left
each shadow table, up to the head seen at the start; the calling process then reloads every
shadow's state from its tables (as after a crash), applies what arrived meanwhile, and
swaps.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.application import Application

from projections.audit import AUDIT_LOG
from projections.framework import Projection
from projections.leftovers import drop_leftovers
from projections.runner import DEFAULT_BATCH, Progress, ProjectionError, Projector
from projections.sql_rebuild import SqlRebuild
from projections.store import SHADOW, ViewStore

log = logging.getLogger(__name__)

# Rough cost of each projection per event, to share them out before anything is measured.
WEIGHTS = {"audit": 3, "frontend": 2, "pnl": 2, "leaderboard": 2, "balances": 1,
           "equity": 2, "backtests": 1}
# Events run in this process before choosing: enough for steady figures (a few batches), a
# small part of a log big enough to be worth splitting.
PROBE_EVENTS = 60_000
# What a process costs before its first event: starting Python, importing the application,
# connecting and loading its projections' state (measured: about 1.5 s on a 2-core machine).
START_SECONDS = 2.0
# Splitting must save at least this share of the time to be chosen (measurement noise).
MARGIN = 0.85


@dataclass
class Plan:
    """How a rebuild ran: the projections of each process (one group: this process alone),
    and the figures it was chosen by (per event, seconds: the shared decoding, and each
    projection's own work; the wall time of the measured part; the estimates)."""

    groups: list[list[str]]
    measured_events: int = 0
    decode: float = 0.0
    costs: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    free_cpus: float = 1.0  # processors less the other processes keeping them busy
    one_process: float = 0.0  # estimated seconds for the rest, in this process
    split: float = 0.0  # and shared out as ``groups`` says (or would have)
    in_sql: list[str] = field(default_factory=list)  # built by PostgreSQL, not in ``groups``
    cpu: dict[str, float] = field(default_factory=dict)  # ``decode`` ("") and ``costs`` in
    # the main thread's processor time (``Projector.cpu_costs``): what compares across loads

    @property
    def processes(self) -> int:
        return max(1, len(self.groups))  # (none in ``groups``: all built in SQL, then here)

    def describe(self) -> str:
        if self.measured_events == 0:
            return f"{self.processes} process(es), not measured"
        verdict = ("split" if self.processes > 1 else "one process")
        return (f"{verdict}: measured {self.measured_events:,} events, estimated "
                f"{self.one_process:.1f}s in one process vs {self.split:.1f}s split, "
                f"{max(0.0, self.free_cpus):.1f} CPU(s) free")


def rebuild(app: Application, store: ViewStore, classes: Sequence[type[Projection]], *,
            batch_size: int = DEFAULT_BATCH, on_progress: Progress | None = None,
            workers: int = 1, database_url: str | None = None,
            force_rechain: Rechain | None = None,
            check_log: LogCheck | None = None,
            on_plan: Callable[[Plan], None] | None = None, split: bool | None = None,
            probe_events: int = PROBE_EVENTS) -> int:
    """Rebuild ``classes``; returns the log position the new tables reflect.

    The audit log is swapped in only if the existing chain agrees with the rebuilt one up to
    the existing one's position (the log was not changed under it): otherwise this refuses
    (``AUDIT_CHAIN_DISAGREES``), unless ``force_rechain`` is given, which is called with the
    first position that disagrees and why (to record the operator's decision) first.
    ``check_log(head)`` may name a first bad position on its own (e.g. a seal that does not
    hold), which is refused the same way. ``workers`` is the most processes to use (see the
    module's docstring for when more than one is: after the first ``probe_events``);
    ``split`` True shares the projections out whatever was measured, False never does;
    ``on_plan`` is told what was chosen."""
    locks = [f"rebuild-{cls.name}" for cls in classes]
    taken: list[str] = []
    in_sql = SqlRebuild(app, store, classes, batch_size)
    try:
        for lock, cls in zip(locks, classes, strict=True):
            if not store.try_lock(lock):
                raise ProjectionError("REBUILD_RUNNING",
                                      f"another process is rebuilding {cls.name}")
            taken.append(lock)
        drop_leftovers(store, classes)  # of an earlier rebuild killed before its swap
        for cls in classes:  # the live tracking row must exist for the swap to move it
            store.register(cls.name, app.name, cls.tables, cls.schema())
        in_sql.start()  # on PostgreSQL's processor while this one runs the rest
        rest = [cls for cls in classes if cls not in in_sql.classes]
        # told before the Python part runs (a split rebuild's processes are then starting)
        told = _telling(on_plan, in_sql.names)
        if rest:
            projector = _in_python(app, store, rest, batch_size, on_progress, workers,
                                   database_url, split, probe_events, told)
        else:
            projector = None
            told(Plan([]))
        projector = _joined(projector, in_sql.finish(on_progress))
        while projector.catch_up(on_progress=on_progress):
            pass  # until a pass finds nothing new
        if any(cls.name == "audit" for cls in classes):
            _bless_chain(store, projector, force_rechain, check_log)
        with store.transaction() as cur:
            for t in projector.tracked:
                p = t.projection
                store.swap(cur, p.name, p.tables, t.position, p.schema())
        return min(projector.positions().values())
    finally:
        in_sql.wait()  # (after a failure here: nothing writes into its tables later)
        for lock in taken:
            store.unlock(lock)


def _in_python(app: Application, store: ViewStore, classes: Sequence[type[Projection]],
               batch_size: int, on_progress: Progress | None, workers: int,
               database_url: str | None, split: bool | None,
               probe_events: int, told: Callable[[Plan], Plan]) -> Projector:
    """Fill the shadow tables of ``classes`` by their Python handlers, in this process or
    shared out (see the module's docstring); ``told`` hears the plan once it is chosen."""
    projector = Projector(app, store, [cls() for cls in classes], batch_size=batch_size,
                          shadow=True)
    projector.create_shadow(keys_after_load=True)
    chosen = Plan([[cls.name for cls in classes]])
    if (workers > 1 and len(classes) > 1 and database_url and store.can_clone
            and split is not False):
        until = projector.head()
        started = time.perf_counter()
        projector.timed = True  # each projection timed: a little slower, only here
        projector.catch_up(until=min(until, probe_events), on_progress=on_progress)
        projector.timed = False
        chosen = plan(projector, time.perf_counter() - started,
                      until - min(projector.positions().values()), workers)
        if split:
            chosen.groups = _names(share_out(list(chosen.costs), workers, chosen.costs))
    told(chosen)
    if chosen.processes > 1:
        positions = _in_processes(database_url, chosen.groups, until, batch_size,
                                  on_progress, projector.positions(), list(projector.keyless))
        projector.resume_shadow(positions)
    else:
        projector.catch_up(on_progress=on_progress)
        projector.finish_shadow()
    return projector


def _telling(on_plan: Callable[[Plan], None] | None, in_sql: list[str]
             ) -> Callable[[Plan], Plan]:
    def told(chosen: Plan) -> Plan:
        chosen.in_sql = in_sql
        if on_plan is not None:
            on_plan(chosen)
        return chosen
    return told


def _joined(python: Projector | None, sql: Projector | None) -> Projector:
    """One projector over both parts' projections, to catch up and swap them together."""
    if python is None or sql is None:
        projector = python or sql
        assert projector is not None
        return projector
    python.tracked.extend(sql.tracked)
    return python


Rechain = Callable[[int, str], None]
LogCheck = Callable[[int], tuple[int, str] | None]


def _bless_chain(store: ViewStore, projector: Projector, force: Rechain | None,
                 check_log: LogCheck | None) -> None:
    head = min(projector.positions().values())
    found = [d for d in (chain_disagreement(store, head),
                         check_log(head) if check_log else None) if d is not None]
    if not found:
        return
    disagreement = min(found)
    position, problem = disagreement
    if force is None:
        raise ProjectionError(
            "AUDIT_CHAIN_DISAGREES",
            f"the audit log's chain disagrees with the event store at position {position}: "
            f"{problem}. Nothing was swapped in: run `tradetape audit verify`; to re-chain "
            "anyway, `tradetape projections rebuild audit --force --reason TEXT` (recorded)")
    force(position, problem)
    while projector.catch_up():
        pass  # the event recording the decision


def chain_disagreement(store: ViewStore, head: int) -> tuple[int, str] | None:
    """The first position up to the live audit log's where it and the rebuilt one (up to
    ``head``) differ (None: they agree, or there was no live audit log)."""
    live_row = store.tracking().get("audit")
    if live_row is None or not store.table_exists(AUDIT_LOG.name):
        return None
    if live_row.position > head:
        return (head + 1, f"the audit log had chained the log up to position "
                f"{live_row.position}; the event store now ends at {head} (truncation)")
    live, shadow = store.q(AUDIT_LOG.name), store.q(AUDIT_LOG.name + SHADOW)
    # A hash chains every event up to its own (position, id, version, topic, stored bytes):
    # the live chain's last hash equal to the rebuilt one's at that position, they agree at
    # every position before. Two look-ups, where the search below joins both tables whole
    # (1.4-1.7 s of a 540,171-event rebuild at load 9-11, with nothing else running).
    last = store.query(
        f"SELECT l.hash = s.hash FROM {live} l JOIN {shadow} s ON s.position = l.position "
        f"WHERE l.position = (SELECT MAX(position) FROM {live} WHERE position <= ?)",
        (live_row.position,))
    if last and last[0][0]:
        return None
    changed = store.query(
        f"SELECT l.position, s.position FROM {live} l LEFT JOIN {shadow} s ON s.position = "
        "l.position WHERE l.position <= ? AND (s.position IS NULL OR s.hash <> l.hash) "
        "ORDER BY l.position LIMIT 1", (live_row.position,))
    inserted = store.query(
        f"SELECT s.position FROM {shadow} s LEFT JOIN {live} l ON l.position = s.position "
        "WHERE s.position <= ? AND l.position IS NULL ORDER BY s.position LIMIT 1",
        (live_row.position,))
    found = []
    if changed:
        position, rebuilt = changed[0]
        found.append((position, "the audit log chained an event the event store no longer "
                      "has" if rebuilt is None else "the event the audit log chained here "
                      "was changed, moved or replaced, or one before it"))
    if inserted:
        found.append((inserted[0][0], "the event store has an event here that the audit log "
                      "never chained (inserted below its position)"))
    return min(found) if found else None


def share_out(names: Sequence[str], workers: int,
              weights: dict[str, float] | None = None) -> list[list[str]]:
    """Projection names in at most ``workers`` groups of about equal weight (``weights``:
    measured costs by name; the rough ``WEIGHTS`` without), heaviest first."""
    weigh = weights or WEIGHTS
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(names))))]
    loads = [0.0] * len(groups)
    for name in sorted(names, key=lambda n: -weigh.get(n, 1)):
        i = loads.index(min(loads))
        groups[i].append(name)
        loads[i] += weigh.get(name, 1)
    return [g for g in groups if g]


def plan(projector: Projector, wall: float, left: int, workers: int,
         machine: Machine | None = None) -> Plan:
    """Whether to share the rest of a rebuild (``left`` events) out between processes, from
    what running every projection here took so far (``wall`` seconds)."""
    costs = projector.costs()
    decode = costs.pop("")
    chosen = choose(projector.events_read, wall, decode, costs, left, workers,
                    machine or Machine.now())
    chosen.cpu = projector.cpu_costs()
    return chosen


@dataclass(frozen=True)
class Machine:
    """The processors this process may use, and how many other processes keep them busy
    (the last minute's load average less this process)."""

    cpus: int
    others: float

    @classmethod
    def now(cls) -> Machine:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cpus = os.cpu_count() or 1
        try:
            others = max(0.0, os.getloadavg()[0] - 1.0)
        except OSError:  # pragma: no cover - no load average
            others = 0.0
        return cls(cpus, others)

    def speed(self, processes: int) -> float:
        """The share of a processor each of ``processes`` of ours gets (fair sharing)."""
        return min(1.0, self.cpus / (self.others + processes))


def choose(measured: int, wall: float, decode: float, costs: dict[str, float], left: int,
           workers: int, machine: Machine) -> Plan:
    """The plan for ``left`` events given ``measured`` events' figures: ``decode`` and
    ``costs`` (seconds of Python: shared decoding, each projection's own work) within
    ``wall`` seconds, run in one process at ``machine.speed(1)``. Each process reads and
    decodes the whole log again: what is not in the figures (waiting for reads, committing,
    the writer and reader threads) is counted whole in each, like the decoding (measured:
    two processes sharing the projections by the old fixed weights were slower than one on
    two cores). Each pays ``START_SECONDS`` and runs at ``machine.speed(processes)``; the
    busiest decides."""
    one = Plan(_names([sorted(costs)]), measured, decode, dict(costs), wall,
               machine.cpus - machine.others)
    if measured == 0 or left <= 0:
        return one
    scale = left / measured
    one.one_process = one.split = wall * scale
    work = sum(costs.values()) or 1e-9
    other = max(0.0, wall - decode - work)
    groups = share_out(list(costs), min(workers, machine.cpus), costs)
    if len(groups) < 2:
        return one
    busiest = max(decode + other + sum(costs[n] for n in g) for g in groups)
    slower = machine.speed(1) / machine.speed(len(groups))
    one.split = scale * busiest * slower + START_SECONDS
    if one.split < MARGIN * one.one_process:
        one.groups = _names(groups)
    return one


def _names(groups: list[list[str]]) -> list[list[str]]:
    """Groups of projection names from groups of what was timed: ledgers sharing books were
    timed as one (``"pnl+leaderboard+equity"``) and go to one process together."""
    return [[name for unit in group for name in unit.split("+")] for group in groups]


def _in_processes(url: str, groups: list[list[str]], until: int, batch_size: int,
                  on_progress: Progress | None, start: dict[str, int],
                  keyless: list[str]) -> dict[str, int]:
    """``keyless``: the shadow tables still without their primary key (each process builds
    those of its projections, ``Projector.finish_shadow``)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    done = [context.Value("q", min(start[n] for n in names)) for names in groups]
    workers = [context.Process(target=_work, args=(url, names, until, batch_size, d, results,
                                                   {n: start[n] for n in names}, keyless),
                               name=f"rebuild {'+'.join(names)}", daemon=True)
               for names, d in zip(groups, done, strict=True)]
    for worker in workers:
        worker.start()
    positions: dict[str, int] = {}
    answers = 0
    try:
        while answers < len(workers):
            try:
                kind, payload = results.get(timeout=0.2)
            except queue.Empty:
                if on_progress:
                    on_progress(min(d.value for d in done), until)
                if not any(w.is_alive() for w in workers) and results.empty():
                    time.sleep(1)  # a last answer may still be in the pipe
                    if results.empty():
                        raise ProjectionError("REBUILD_FAILED",
                                              "a rebuild process died") from None
                continue
            if kind == "refused":  # a named error: the user can act on it, as in one process
                raise ProjectionError(*payload)
            if kind == "error":  # the traceback for the log, never for the user
                log.error("a rebuild process failed:\n%s", payload)
                raise ProjectionError("REBUILD_FAILED", "a rebuild process failed (its "
                                      "traceback is in the server's log)")
            positions.update(payload)
            answers += 1
    finally:
        for worker in workers:
            if worker.is_alive() and answers < len(workers):
                worker.terminate()
            worker.join()
    return positions


def _work(url: str, names: list[str], until: int, batch_size: int, done, results,
          start: dict[str, int], keyless: list[str]) -> None:
    """One rebuild process: fill the named projections' shadow tables from ``start`` (each
    one's position so far) up to ``until``."""
    try:
        import os

        # The tables exist: two processes creating them at once trip over each other
        # in the library's CREATE OR REPLACE FUNCTION ("tuple concurrently updated").
        os.environ["TRADING_CREATE_TABLE"] = "no"
        from application.bootstrap import open_trading
        from application.settings import parse_database_url
        from projections.registry import select
        from projections.store import open_view_store

        app = open_trading(url)
        store = open_view_store(parse_database_url(url))
        try:
            projector = Projector(app, store, [cls() for cls in select(names)],
                                  batch_size=batch_size, shadow=True)
            projector.resume_shadow(start, keyless)
            _end_with_parent()

            def progress(position: int, _: int) -> None:
                done.value = position

            projector.catch_up(until=until, on_progress=progress)
            projector.finish_shadow()  # here, at the same time as the other processes
            results.put(("done", projector.positions()))
        finally:
            store.close()
            app.close()
    except ProjectionError as error:
        results.put(("refused", (error.code, error.message)))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _end_with_parent() -> None:
    """A rebuild process ends at once with the rebuild that started it (killed before its
    swap), its open transaction rolled back: else it went on writing into shadow tables the
    next rebuild made afresh (UniqueViolation there, or PostgreSQL's DeadlockDetected)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes
        os._exit(1)

    threading.Thread(target=watch, name="rebuild-parent-watch", daemon=True).start()

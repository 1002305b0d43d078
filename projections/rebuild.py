"""Rebuilding projections: replay the whole log into shadow tables (``<table>__rebuild``),
then swap them in, every projection rebuilt in one transaction. Readers see the old tables
until that commit; a runner following the log finds the generation changed at its next batch
and reloads its state from the new tables.

With ``workers > 1`` (a SQLite file or PostgreSQL) the projections are shared out between
processes, each reading the log up to the head seen at the start; the calling process then
reloads every shadow's state from its tables (as after a crash), applies what arrived
meanwhile, and swaps.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable, Sequence

from eventsourcing.application import Application

from projections.audit import AUDIT_LOG
from projections.framework import Projection
from projections.runner import DEFAULT_BATCH, Progress, ProjectionError, Projector
from projections.store import SHADOW, ViewStore

# Rough cost of each projection per event, to share them out between processes.
WEIGHTS = {"audit": 3, "frontend": 2, "pnl": 2, "leaderboard": 2, "balances": 1}


def rebuild(app: Application, store: ViewStore, classes: Sequence[type[Projection]], *,
            batch_size: int = DEFAULT_BATCH, on_progress: Progress | None = None,
            workers: int = 1, database_url: str | None = None,
            force_rechain: Rechain | None = None,
            check_log: LogCheck | None = None) -> int:
    """Rebuild ``classes``; returns the log position the new tables reflect.

    The audit log is swapped in only if the existing chain agrees with the rebuilt one up to
    the existing one's position (the log was not changed under it): otherwise this refuses
    (``AUDIT_CHAIN_DISAGREES``), unless ``force_rechain`` is given, which is called with the
    first position that disagrees and why (to record the operator's decision) first.
    ``check_log(head)`` may name a first bad position on its own (e.g. a seal that does not
    hold), which is refused the same way."""
    locks = [f"rebuild-{cls.name}" for cls in classes]
    taken: list[str] = []
    try:
        for lock, cls in zip(locks, classes, strict=True):
            if not store.try_lock(lock):
                raise ProjectionError("REBUILD_RUNNING",
                                      f"another process is rebuilding {cls.name}")
            taken.append(lock)
        for cls in classes:  # the live tracking row must exist for the swap to move it
            store.register(cls.name, app.name, cls.tables, cls.schema())
        projector = Projector(app, store, [cls() for cls in classes], batch_size=batch_size,
                              shadow=True)
        projector.create_shadow()
        groups = share_out(classes, workers)
        if len(groups) > 1 and database_url and store.can_clone:
            until = projector.head()
            positions = _in_processes(database_url, groups, until, batch_size, on_progress)
            projector.resume_shadow(positions)
        else:
            projector.catch_up(on_progress=on_progress)
            projector.finish_shadow()
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
        for lock in taken:
            store.unlock(lock)


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


def share_out(classes: Sequence[type[Projection]], workers: int) -> list[list[str]]:
    """Projection names in at most ``workers`` groups of about equal weight."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(classes))))]
    loads = [0] * len(groups)
    for cls in sorted(classes, key=lambda c: -WEIGHTS.get(c.name, 1)):
        i = loads.index(min(loads))
        groups[i].append(cls.name)
        loads[i] += WEIGHTS.get(cls.name, 1)
    return groups


def _in_processes(url: str, groups: list[list[str]], until: int, batch_size: int,
                  on_progress: Progress | None) -> dict[str, int]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    done = [context.Value("q", 0) for _ in groups]
    workers = [context.Process(target=_work, args=(url, names, until, batch_size, d, results),
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
            if kind == "error":
                raise ProjectionError("REBUILD_FAILED", payload)
            positions.update(payload)
            answers += 1
    finally:
        for worker in workers:
            if worker.is_alive() and answers < len(workers):
                worker.terminate()
            worker.join()
    return positions


def _work(url: str, names: list[str], until: int, batch_size: int, done, results) -> None:
    """One rebuild process: fill the named projections' shadow tables up to ``until``."""
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
            projector.resume_shadow()

            def progress(position: int, _: int) -> None:
                done.value = position

            projector.catch_up(until=until, on_progress=progress)
            projector.finish_shadow()  # here, at the same time as the other processes
            results.put(("done", projector.positions()))
        finally:
            store.close()
            app.close()
    except BaseException:
        results.put(("error", traceback.format_exc()))

"""tradetape projections run [NAME...] | status | rebuild [NAME...] [--database URL]

Read models (audit, balances, pnl, leaderboard, frontend) kept in the event store's own
database. ``run`` follows the log (one owner per projection: a second runner exits),
``status`` shows positions and lag, ``rebuild`` replays the log into shadow tables and swaps
them in at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from api.commands.common import EXIT_FAILED, CommandError, add_database_option, print_json

# checked again at run time
NAMES = ("audit", "balances", "pnl", "leaderboard", "frontend", "billing_ledger", "equity",
         "backtests")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="follow the log and keep projections up to date")
    run.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)} "
                     "(default: all)")
    run.add_argument("--once", action="store_true", help="catch up, then exit")
    run.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                     help="longest wait for new events (SQLite polls; PostgreSQL is woken "
                     "by NOTIFY)")
    _batch_option(run)
    add_database_option(run)
    status = actions.add_parser("status", help="each projection's position, the head, the lag")
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(status)
    rebuild = actions.add_parser("rebuild", help="replay the whole log into new tables and "
                                 "swap them in atomically")
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    rebuild.add_argument("--workers", default="auto", metavar="N",
                         help="processes sharing the projections (default: 2 for large logs "
                         "on a multi-core machine, else 1)")
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")
    rebuild.add_argument("--force", action="store_true",
                         help="re-chain the audit log even though its chain disagrees with "
                         "the event store (needs --reason; recorded as an event)")
    rebuild.add_argument("--reason", metavar="TEXT", help="why the audit log is re-chained")
    rebuild.add_argument("--actor", metavar="NAME",
                         help="the operator recorded with a forced re-chain (default: the "
                         "OS user)")
    _batch_option(rebuild)
    add_database_option(rebuild)


def _batch_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="events per transaction (default: 2000 to follow, up to 40000 "
                        "when far behind; 10000 to rebuild)")


def run(args: argparse.Namespace) -> int:
    from api.commands.readmodels import open_views, projection_error
    from projections.runner import ProjectionError

    with open_views(args.database) as views:
        try:
            return {"run": _run, "status": _status, "rebuild": _rebuild}[args.action](
                views, args)
        except ProjectionError as error:
            raise projection_error(error) from None


# --- run ------------------------------------------------------------------------------------


def _run(views, args: argparse.Namespace) -> int:
    import threading

    from projections.registry import select
    from projections.runner import CATCH_UP_BATCH
    from projections.supervisor import SupervisedProjections

    classes = select(args.names)
    if views.database.kind == "memory" and not args.once:
        raise CommandError("MEMORY_STORE", "a memory store lives in one process: there is "
                           "nothing to follow (use --once, or a database URL)")
    for cls in classes:
        if not views.store.try_lock(cls.name):
            raise CommandError(
                "PROJECTION_OWNED", f"{cls.name} is already run by another process on "
                f"{views.database.display}; one runner owns a projection", EXIT_FAILED)
    # Far behind, batches of up to CATCH_UP_BATCH events, unless a size is given.
    projector = SupervisedProjections(views.app, views.store, classes,
                                      batch_size=args.batch_size or 2000,
                                      max_batch=None if args.batch_size else CATCH_UP_BATCH)
    projector.start()
    names = ", ".join(cls.name for cls in classes)
    if args.once:
        read = projector.catch_up()
        print(f"{names}: {read} events applied, at position {_at(projector)}")
        return _report_stuck(projector.problems())
    stop = threading.Event()
    _stop_on_signals(stop)
    print(f"following {views.database.display} for {names} (Ctrl-C stops)", file=sys.stderr)
    with suppress(KeyboardInterrupt):
        projector.follow(stop, poll=args.poll, on_batch=lambda n: print(
            f"{n} events applied, at position {_at(projector)}", file=sys.stderr))
    print(f"stopped at position {_at(projector)}", file=sys.stderr)
    return 0


def _at(projector) -> int:
    return min(projector.positions().values())


def _report_stuck(stuck: list[dict]) -> int:
    """One line per projection that could not advance (the others did); failure if any."""
    for s in stuck:
        print(f"PROJECTION_STUCK: {s['name']} cannot advance past position {s['position']}"
              f" (event {s['failing_position'] or '-'}): {s['error']}", file=sys.stderr)
    return EXIT_FAILED if stuck else 0


def _stop_on_signals(stop) -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())


# --- status ---------------------------------------------------------------------------------


def _status(views, args: argparse.Namespace) -> int:
    from projections.registry import PROJECTIONS
    from projections.supervisor import faults

    head = views.app.recorder.max_notification_id() or 0
    tracked = views.store.tracking()
    stuck = faults(views.store)
    rows = []
    for name, cls in PROJECTIONS.items():
        row = tracked.get(name)
        fault = stuck.get(name)
        if fault and row is not None and row.position > fault["position"]:
            fault = None  # it has moved on since that report
        state = ("not built" if row is None else
                 "needs rebuild" if row.schema_hash != cls.schema() else
                 "stuck" if fault else "ok")
        running = None
        if row is not None and views.database.kind != "memory":
            running = not views.store.try_lock(name)
            if not running:
                views.store.unlock(name)
        rows.append({"name": name, "description": cls.description, "state": state,
                     "position": row.position if row else None, "head": head,
                     "lag": head - row.position if row else None,
                     "generation": row.generation if row else None,
                     "updated_at": row.updated_at if row else None, "running": running,
                     "error": fault["error"] if fault else None,
                     "failing_position": fault["failing_position"] if fault else None,
                     "stuck_since": fault["since"] if fault else None})
    if args.json:
        print_json({"database": views.database.display, "head": head, "projections": rows})
        return 0
    _print_status(views.database.display, head, rows)
    for r in rows:
        if r["error"]:
            print(f"{r['name']} is stuck since {r['stuck_since']} at position {r['position']}"
                  f" (event {r['failing_position'] or '-'}): {r['error']}")
    return 0


def _print_status(display: str, head: int, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Projections of {display} (log head {head})")
    for column in ("projection", "state", "position", "lag", "generation", "runner",
                   "last commit"):
        table.add_column(column, justify="right" if column in ("position", "lag") else "left")
    for r in rows:
        runner = "-" if r["running"] is None else "running" if r["running"] else "idle"
        table.add_row(r["name"], r["state"], _cell(r["position"]), _cell(r["lag"]),
                      _cell(r["generation"]), runner, _cell(r["updated_at"]))
    Console(width=120).print(table)


def _cell(value) -> str:
    return "-" if value is None else str(value)


# --- rebuild --------------------------------------------------------------------------------


def _rebuild(views, args: argparse.Namespace) -> int:
    import os
    import time

    from application.bootstrap import seal_check
    from projections.rebuild import rebuild
    from projections.registry import select

    classes = select(args.names)
    force = _force_rechain(views, args)
    head = views.app.recorder.max_notification_id() or 0
    workers = _workers(args.workers, head, os.cpu_count() or 1)
    show = not args.no_progress and sys.stderr.isatty()
    started = time.perf_counter()
    plans: list = []  # how many processes the rebuild chose (by measurement, up to workers)
    with rebuild_progress(enabled=show, total=head) as advance:
        position = rebuild(views.app, views.store, classes,
                           batch_size=args.batch_size or 10_000, on_progress=advance,
                           workers=workers, database_url=views.database.url,
                           force_rechain=force,
                           check_log=seal_check(views.app, views.database.url),
                           on_plan=plans.append)
    elapsed = max(time.perf_counter() - started, 1e-9)
    names = ", ".join(cls.name for cls in classes)
    used = plans[0].processes if plans else 1
    print(f"rebuilt {names} up to position {position} ({head} events in {elapsed:.1f}s, "
          f"{head / elapsed:,.0f} events/s, {used} process{'es' if used > 1 else ''})")
    return 0


def _force_rechain(views, args: argparse.Namespace):
    """With ``--force --reason``: what records the operator's decision to re-chain."""
    if not args.force:
        return None
    reason = (args.reason or "").strip()
    if not reason:
        raise CommandError("REASON_REQUIRED", "--force re-chains the audit log: say why with "
                           "--reason TEXT (it is recorded, with the operator)")
    from api.commands.audit_checks import operator
    from application.audit_trail import record_rechain

    actor = operator(args)

    def record(position: int, problem: str) -> None:
        record_rechain(views.app, reason=reason, position=position, problem=problem,
                       actor=actor)
        print(f"warning: re-chaining the audit log although it disagrees with the event "
              f"store at position {position} ({problem}); recorded for {actor}: {reason}",
              file=sys.stderr)

    return record


def _workers(text: str, head: int, cpus: int) -> int:
    if text == "auto":
        return 2 if cpus >= 2 and head >= 200_000 else 1
    if not text.isdigit() or int(text) < 1:
        raise CommandError("INVALID_WORKERS", f"--workers takes a whole number >= 1 or auto, "
                           f"not {text!r}")
    return int(text)


@contextmanager
def rebuild_progress(*, enabled: bool, total: int) -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr with events/s and the time left; ``advance(position, head)``."""
    if not enabled:
        yield lambda done, total=None: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("rebuild"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("rebuild", total=total or None, rate="")

        def advance(done: int, head: int | None = None) -> None:
            if head:
                progress.update(task, total=head)
            progress.update(task, completed=done)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed:,.0f} events/s" if speed else "")

        yield advance

"""tradetape replay [--database URL] [--check [--candles-dir DIR]]"""

from __future__ import annotations

import argparse
import sys

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_option(parser)
    parser.add_argument("--check", action="store_true",
                        help="re-run every stored backtest and compare its events")
    parser.add_argument("--candles-dir", metavar="DIR",
                        help="with --check: where to look for a run's candles file (by its "
                        "name) when it is not at the path the run recorded")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from api.commands.common import batch_gc
    from api.progress import progress_bar
    from application.bootstrap import open_trading, rerun_backtest
    from application.replay import check_stored_run, rebuild_all
    from application.settings import parse_database_url
    from domain.errors import DomainError

    database = parse_database_url(args.database)
    app = open_trading(args.database)
    show = not args.no_progress and sys.stderr.isatty()
    failed = False
    try:
        head = app.recorder.max_notification_id() or 0
        with progress_bar("replay", enabled=show, total=head, unit="events") as advance:
            report = rebuild_all(app, on_progress=advance)
        print(f"{database.display}: {report.events} events rebuilt into "
              f"{sum(report.aggregates.values())} aggregates")
        for kind, count in sorted(report.aggregates.items()):
            print(f"  {kind}: {count}{_run_statuses(report) if kind == 'BacktestRun' else ''}")
        for failure in report.failures:
            failed = True
            print(f"FAILED {failure}")
        if args.check:
            if not report.backtests:
                print("no stored backtests to check")
            for run_agg in report.backtests:
                try:
                    with batch_gc():
                        fresh = rerun_backtest(run_agg, args.candles_dir)
                except DomainError as error:
                    failed = True
                    print(f"backtest {run_agg.id}: cannot re-run: {error}")
                    continue
                span = report.span_of({n.originator_id for n in fresh})
                passed, found = check_stored_run(app, run_agg, fresh, span)
                failed = failed or not passed
                print(f"backtest {run_agg.id}: {found}")
    finally:
        app.close()
    return 1 if failed else 0


def _run_statuses(report) -> str:
    """`` (2 completed, 1 interrupted)``: how the stored backtests ended."""
    from collections import Counter

    statuses = Counter(run.status for run in report.backtests)
    return " (" + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) + ")"

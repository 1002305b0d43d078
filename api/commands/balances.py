"""tradetape balances [--as-of ISO-TIME] [--market-as-of ISO-TIME] [--include-backtests]
[--owner ID] [--json] [--database URL]

Free, locked and total per owner, exchange account and asset, from the ``balances`` view (or,
with ``--as-of``, from the events recorded by that time through the same projection).
Backtest runs' paper accounts are left out unless asked for."""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option
from api.commands.readmodels import add_time_travel_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", metavar="ID", help="only this owner's accounts")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_time_travel_options(parser)
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import print_json
    from api.commands.readmodels import backtests_left_out, report_now_or_as_of, time_travel
    from projections.balances import Balances, balances_report

    as_of, market_as_of = time_travel(args)
    left_out = backtests_left_out(args)
    rows, position, head = report_now_or_as_of(
        args.database, Balances, as_of,
        lambda store: balances_report(store, owner=args.owner, exclude_owners=left_out),
        market_as_of)
    report = {"as_of": as_of.isoformat() if as_of else None,
              "market_as_of": market_as_of.isoformat() if market_as_of else None,
              "owner": args.owner, "backtests": not left_out, "position": position,
              "lag": head - position, "balances": rows}
    if args.json:
        print_json(report)
    else:
        _print(report)
    return 0


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    when = f" as of {report['as_of']}" if report["as_of"] else ""
    if report["market_as_of"]:
        when += f" (market time by {report['market_as_of']})"
    if not report["backtests"]:
        when += " (backtests left out: --include-backtests)"
    table = Table(title=Text(f"Balances{when}"))
    for column in ("owner", "account", "asset", "free", "locked", "total"):
        table.add_column(column, justify="right" if column in ("free", "locked", "total")
                         else "left")
    for row in report["balances"]:
        table.add_row(*(Text(str(row[k])) for k in ("owner_id", "account_id", "asset", "free",
                                                     "locked", "total")))
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)

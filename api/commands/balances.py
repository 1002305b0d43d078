"""tradetape balances [--as-of ISO-TIME] [--owner ID] [--json] [--database URL]

Free, locked and total per owner, exchange account and asset, from the ``balances`` view (or,
with ``--as-of``, from the events up to that time through the same projection)."""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", metavar="ISO-TIME",
                        help="as the events up to this time had it (a time without zone is UTC)")
    parser.add_argument("--owner", metavar="ID", help="only this owner's accounts")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import parse_time, print_json
    from api.commands.readmodels import report_now_or_as_of
    from projections.balances import Balances, balances_report

    as_of = parse_time(args.as_of) if args.as_of else None
    rows, position, head = report_now_or_as_of(
        args.database, Balances, as_of, lambda store: balances_report(store, owner=args.owner))
    report = {"as_of": as_of.isoformat() if as_of else None, "owner": args.owner,
              "position": position, "lag": head - position, "balances": rows}
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

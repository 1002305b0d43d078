"""tradetape pnl [--as-of ISO-TIME] [--owner ID] [--bot ID] [--daily] [--json] [--database URL]

Realized and unrealized P/L, fees, closed deals and win rate, for the whole store, one owner
or one bot, with each bot's figures. From the ``pnl`` view; with ``--as-of``, from the
events up to that time, replayed through the same projection."""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option

COLUMNS = ("realized_pnl", "unrealized_pnl", "fees", "deals_closed", "deals_open", "win_rate",
           "profit_factor", "max_drawdown", "capital_committed", "roi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", metavar="ISO-TIME",
                        help="as the events up to this time had it (a time without zone is UTC)")
    parser.add_argument("--owner", metavar="ID", help="only this owner's bots")
    parser.add_argument("--bot", metavar="ID", help="only this bot")
    parser.add_argument("--daily", action="store_true", help="each bot's daily series")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import parse_time, print_json
    from api.commands.readmodels import report_now_or_as_of
    from projections.pnl import Pnl, pnl_report

    as_of = parse_time(args.as_of) if args.as_of else None
    report, position, head = report_now_or_as_of(
        args.database, Pnl, as_of,
        lambda store: pnl_report(store, owner=args.owner, bot=args.bot, daily=args.daily))
    report = {"as_of": as_of.isoformat() if as_of else None, "position": position,
              "lag": head - position, **report}
    if args.json:
        print_json(report)
    else:
        _print(report)
    return 0


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    scope = report["scope"]
    what = (f"bot {scope['bot']}" if scope["bot"] else f"owner {scope['owner']}"
            if scope["owner"] else "all owners")
    when = f" as of {report['as_of']}" if report["as_of"] else ""
    lag = f", {report['lag']} events behind the log" if report["lag"] else ""
    table = Table(title=Text(f"P/L of {what}{when}{lag}"))
    table.add_column("bot")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    for bot in report["bots"]:
        table.add_row(Text(bot["name"] or bot["bot_id"]), *(_cell(bot[c]) for c in COLUMNS))
    table.add_row(Text("total", style="bold"), *(_cell(report[c]) for c in COLUMNS))
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


def _cell(value) -> str:
    from decimal import Decimal

    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:,.8f}".rstrip("0").rstrip(".")
    return str(value)

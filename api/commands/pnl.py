"""tradetape pnl [--as-of ISO-TIME] [--market-as-of ISO-TIME] [--include-backtests]
[--owner ID] [--bot ID] [--backtest RUN_ID] [--daily] [--json] [--database URL]

Realized and unrealized P/L, fees, closed deals and win rate, for the whole store, one owner
or one bot, with each bot's figures. From the ``pnl`` view; with ``--as-of``, from the
events recorded by that time (``--market-as-of``: whose own time is by then), replayed
through the same projection. Backtest runs are left out unless asked for."""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option
from api.commands.readmodels import add_time_travel_options

COLUMNS = ("realized_pnl", "unrealized_pnl", "fees", "deals_closed", "deals_open", "win_rate",
           "profit_factor", "max_drawdown", "capital_committed", "roi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--owner", metavar="ID", help="only this owner's bots")
    parser.add_argument("--bot", metavar="ID", help="only this bot")
    parser.add_argument("--backtest", metavar="RUN_ID",
                        help="only this stored backtest run (its bot; the run id as "
                             "`backtest --json` prints it)")
    parser.add_argument("--daily", action="store_true", help="each bot's daily series")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_time_travel_options(parser)
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import print_json
    from api.commands.readmodels import (
        backtest_bot,
        backtests_left_out,
        report_now_or_as_of,
        time_travel,
    )
    from projections.pnl import Pnl, pnl_report

    as_of, market_as_of = time_travel(args)
    if args.backtest:
        args.bot = backtest_bot(args.database, args.backtest)
    left_out = backtests_left_out(args)
    report, position, head = report_now_or_as_of(
        args.database, Pnl, as_of,
        lambda store: pnl_report(store, owner=args.owner, bot=args.bot, daily=args.daily,
                                 exclude_owners=left_out), market_as_of)
    report = {"as_of": as_of.isoformat() if as_of else None,
              "market_as_of": market_as_of.isoformat() if market_as_of else None,
              "backtests": not left_out, "position": position, "lag": head - position, **report}
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
    if report["market_as_of"]:
        when += f" (market time by {report['market_as_of']})"
    lag = f", {report['lag']} events behind the log" if report["lag"] else ""
    if not report["backtests"]:
        lag += " (backtests left out: --include-backtests)"
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

"""tradetape backtest --candles FILE.csv --config bot.json [--fee-rate 0.001] [--balance QUOTE]
[--store memory|DATABASE_URL] [--json] [--deals] [--plot equity.png]"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candles", required=True, metavar="FILE.csv",
                        help="CSV with header timestamp_ms,open,high,low,close,volume")
    parser.add_argument("--config", required=True, metavar="FILE", help="bot configuration JSON")
    parser.add_argument("--fee-rate", default="0.001", help="fee per fill, fraction of notional")
    parser.add_argument("--balance", default=None, metavar="QUOTE",
                        help="starting quote balance (default: unlimited, capital is measured)")
    parser.add_argument("--store", default="memory", metavar="URL",
                        help="memory (keeps nothing) | sqlite:///PATH | postgresql://...")
    parser.add_argument("--seed", default=None,
                        help="names the run's ids; the same seed and inputs give identical events")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--deals", action="store_true", help="include every closed deal")
    parser.add_argument("--plot", metavar="FILE.png", help="price with entries/exits and equity")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from api.commands.bot_config import load_bot_config
    from api.commands.common import batch_gc, print_json
    from api.progress import progress_bar
    from application.bootstrap import backtest
    from domain.money import to_decimal

    config = load_bot_config(args.config)
    fee_rate = to_decimal(args.fee_rate, "fee_rate")
    balance = None if args.balance is None else to_decimal(args.balance, "balance")
    show = not args.no_progress and sys.stderr.isatty()
    with progress_bar("backtest", enabled=show) as advance, batch_gc():
        result = backtest(
            args.candles, config, fee_rate=fee_rate, balance=balance, store_url=args.store,
            seed=args.seed, keep_deals=args.deals or bool(args.plot),
            keep_equity=bool(args.plot), on_progress=advance,
        )
    if args.plot:
        from api.plots import plot_backtest

        plot_backtest(args.plot, args.candles, result)
    output = dict(result.summary)
    output["run_id"] = str(result.run_id)
    if args.deals:
        output["deals"] = result.deals
    if args.json:
        print_json(_as_json(output))
    else:
        _print_summary(output, args)
    return 0


def _as_json(data):
    from decimal import Decimal

    if isinstance(data, dict):
        return {k: _as_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_as_json(v) for v in data]
    return str(data) if isinstance(data, Decimal) else data


def _print_summary(s: dict, args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Backtest of {args.config} on {args.candles}", show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    for key in ("candles", "gaps", "deals_closed", "deals_open", "take_profits", "stop_losses",
                "realized_pnl", "unrealized_pnl", "fees_closed_deals", "win_rate",
                "max_safety_orders_used", "max_drawdown", "max_capital_committed",
                "orders_rejected", "bot_error", "events", "run_id"):
        value = s.get(key)
        table.add_row(key.replace("_", " "), _short(value))
    console.print(table)
    if args.deals and s.get("deals"):
        deals = Table(title="Closed deals")
        for col in ("opened", "closed", "reason", "SOs", "avg entry", "exit", "P/L"):
            deals.add_column(col, justify="right")
        for d in s["deals"]:
            deals.add_row(str(d["opened"]), str(d["closed"]), d["reason"],
                          str(d["safety_orders"]), _short(d["avg_entry"]), _short(d["exit"]),
                          _short(d["pnl"]))
        console.print(deals)
    if args.store == "memory":
        console.print("[dim]events were kept in memory only; use --store to keep them[/dim]")


def _short(value) -> str:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return f"{value:.8f}".rstrip("0").rstrip(".") if value != value.to_integral() else (
            f"{value:.0f}")
    return "-" if value is None else str(value)

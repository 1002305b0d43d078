"""tradetape compare --candles FILE.csv --config a.json b.json ... [--fee-rate 0.001]
[--balance QUOTE] [--from TIME] [--to TIME] [--sort total_pnl] [--json] [--plot FILE.png]"""

from __future__ import annotations

import argparse
import sys

# Figures a run can be ranked by; drawdown and capital rank best when smallest.
SORT_KEYS = ("total_pnl", "roi", "realized_pnl", "win_rate", "profit_factor", "max_drawdown",
             "max_capital_committed", "deals_closed")
SMALLEST_FIRST = ("max_drawdown", "max_capital_committed")
COLUMNS = ("total_pnl", "realized_pnl", "unrealized_pnl", "roi", "deals_closed", "win_rate",
           "profit_factor", "max_drawdown", "max_capital_committed", "max_safety_orders_used",
           "orders_rejected")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from api.commands.backtest import add_market_arguments

    add_market_arguments(parser)
    parser.add_argument("--config", required=True, nargs="+", metavar="FILE",
                        help="two or more bot configurations to run on the same candles")
    parser.add_argument("--sort", choices=SORT_KEYS, default="total_pnl",
                        help="rank the runs by this figure (default: total_pnl, realized + "
                        "the open deal marked at the last close)")
    parser.add_argument("--seed", default="compare", help="names every run's ids")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="the price above every configuration's equity curve")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    from api.commands.backtest import as_json, market_of
    from api.commands.common import batch_gc, print_json
    from api.progress import progress_bar
    from application.bootstrap import compare

    configs = [_load(path) for path in args.config]  # every file checked before any run
    if args.plot:
        from api.plots import prepare_plot_path

        prepare_plot_path(args.plot)
    fee_rate, balance, period = market_of(args)
    show = not args.no_progress and sys.stderr.isatty()
    with progress_bar("compare", enabled=show, total=len(configs), unit="runs") as advance, \
            batch_gc():
        candles, results = compare(args.candles, configs, fee_rate=fee_rate, balance=balance,
                                   seed=args.seed, period=period, on_progress=advance,
                                   keep_equity=bool(args.plot))
    if args.plot:
        from api.plots import plot_comparison

        plot_comparison(args.plot, candles, dict(zip(args.config, results, strict=True)))
    runs = ranked([{"config": path, **result.summary, "run_id": str(result.run_id)}
                   for path, result in zip(args.config, results, strict=True)], args.sort)
    first = runs[0]
    output = {"candles": first["candles"], "gaps": first["gaps"],
              "market_change": first["market_change"], "sort": args.sort, "runs": runs}
    if period is not None:
        output["from_ms"], output["to_ms"] = period
    if args.json:
        print_json(as_json(output))
    else:
        _print_table(output, candles.source)
    return 0


def ranked(runs: list[dict], key: str) -> list[dict]:
    """Best first by ``key``; runs without the figure (no closed deal, no loss) last, and
    ties in the order the configurations were given."""
    sign = 1 if key in SMALLEST_FIRST else -1
    return sorted(runs, key=lambda r: (r[key] is None, sign * r[key] if r[key] is not None
                                       else 0))


def _load(path: str):
    """A configuration, or the error that names the file it is in."""
    from api.commands.bot_config import load_bot_config
    from api.commands.common import CommandError
    from domain.errors import DomainError, InvalidConfigError

    try:
        return load_bot_config(path)
    except InvalidConfigError as error:
        raise CommandError(error.code, f"{path}: " + "; ".join(
            str(violation) for violation in error.violations)) from None
    except DomainError as error:
        message = str(error)
        raise CommandError(error.code, message if path in message else f"{path}: {message}"
                           ) from None


def _print_table(output: dict, source: str) -> None:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from api.commands.backtest import percent, short

    console = Console() if sys.stdout.isatty() else Console(width=200)
    table = Table(title=f"{len(output['runs'])} configurations on {Path(source).name}: "
                        f"{output['candles']} candles, market {percent(output['market_change'])}"
                        f", ranked by {output['sort'].replace('_', ' ')}")
    table.add_column("#", justify="right")
    table.add_column("config")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    for rank, run in enumerate(output["runs"], start=1):
        cells = [percent(run[c]) if c in ("win_rate", "roi") else short(run[c])
                 for c in COLUMNS]
        table.add_row(str(rank), Path(run["config"]).name, *cells)
    console.print(table)

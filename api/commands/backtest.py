"""tradetape backtest --candles FILE.csv --config bot.json [--fee-rate 0.001] [--balance QUOTE]
[--store memory|DATABASE_URL] [--from TIME] [--to TIME] [--json] [--deals] [--plot equity.png]"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_market_arguments(parser)
    parser.add_argument("--config", required=True, metavar="FILE", help="bot configuration JSON")
    parser.add_argument("--store", default="memory", metavar="URL",
                        help="memory (keeps nothing) | sqlite:///PATH | postgresql://...")
    parser.add_argument("--seed", default=None,
                        help="names the run's ids; the same seed and inputs give identical events")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--deals", action="store_true",
                        help="include every closed deal, and the deal still open at the end")
    parser.add_argument("--plot", metavar="FILE.png", help="price with entries/exits and equity")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_market_arguments(parser: argparse.ArgumentParser) -> None:
    """What a run is run on: the candles, their period, the fee and the balance."""
    parser.add_argument("--candles", required=True, metavar="FILE.csv",
                        help="CSV with header timestamp_ms,open,high,low,close,volume")
    parser.add_argument("--fee-rate", default="0.001", help="fee per fill, fraction of notional")
    parser.add_argument("--balance", default=None, metavar="QUOTE",
                        help="starting quote balance (default: unlimited, capital is measured)")
    parser.add_argument("--from", dest="period_from", metavar="TIME",
                        help="only candles opening at or after TIME (ISO 8601, UTC unless it "
                        "says otherwise, or UTC milliseconds)")
    parser.add_argument("--to", dest="period_to", metavar="TIME",
                        help="only candles opening before TIME")


def market_of(args: argparse.Namespace):
    """``(fee_rate, balance, period)`` from the options of :func:`add_market_arguments`."""
    from domain.numbers import BALANCE, FEE_RATE, parse_number

    period = period_of(args)
    fee_rate = parse_number(args.fee_rate, "fee_rate", FEE_RATE)
    balance = None if args.balance is None else parse_number(args.balance, "balance", BALANCE)
    return fee_rate, balance, period


def run(args: argparse.Namespace) -> int:
    from api.commands.bot_config import load_bot_config
    from api.commands.common import batch_gc, print_json
    from api.progress import progress_bar
    from application.bootstrap import backtest
    from domain.errors import DomainError

    config = load_bot_config(args.config)
    if args.plot:
        from api.plots import prepare_plot_path

        prepare_plot_path(args.plot)
    fee_rate, balance, period = market_of(args)
    show = not args.no_progress and sys.stderr.isatty()
    try:
        with progress_bar("backtest", enabled=show) as advance, batch_gc():
            result = backtest(
                args.candles, config, fee_rate=fee_rate, balance=balance,
                store_url=args.store, seed=args.seed, keep_deals=args.deals or bool(args.plot),
                keep_equity=bool(args.plot), on_progress=advance, period=period,
            )
    except (KeyboardInterrupt, DomainError) as error:
        if args.store != "memory":  # what the run kept of itself, if anything
            for note in getattr(error, "__notes__", ()):
                print(note, file=sys.stderr)
        raise
    if args.plot:
        from api.plots import plot_backtest

        plot_backtest(args.plot, result)
    output = dict(result.summary)
    output["run_id"] = str(result.run_id)
    if period is not None:  # what --from/--to were taken to mean, in the file's own unit
        output["from_ms"], output["to_ms"] = period
    if args.deals:
        output["deals"] = result.deals
        output["open_deal"] = result.open_deal
    if args.json:
        print_json(as_json(output))
    else:
        _print_summary(output, args)
    return 0


def period_of(args: argparse.Namespace) -> tuple[int | None, int | None] | None:
    """``--from``/``--to`` as UTC milliseconds, or None for the whole file."""
    if args.period_from is None and args.period_to is None:
        return None
    return _ms(args.period_from, "--from"), _ms(args.period_to, "--to")


LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time Python holds


def _ms(text: str | None, option: str) -> int | None:
    from datetime import UTC, datetime, timedelta

    from api.commands.common import CommandError, parse_time

    if text is None:
        return None
    if text.strip().isascii() and text.strip().isdigit():  # milliseconds, as in candle files
        ms = int(text)
        if ms > LATEST_MS:
            raise CommandError("INVALID_TIME", f"{option} {text.strip()[:24]} is after the "
                               "year 9999 (UTC milliseconds, as in candle files)")
        return ms
    since_epoch = parse_time(text, option) - datetime(1970, 1, 1, tzinfo=UTC)
    return since_epoch // timedelta(milliseconds=1)


def as_json(data):
    from decimal import Decimal

    if isinstance(data, dict):
        return {k: as_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [as_json(v) for v in data]
    return str(data) if isinstance(data, Decimal) else data


def _print_summary(s: dict, args: argparse.Namespace) -> None:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    # Piped or redirected, rows are not cut to 80 columns: a file has no width.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    title = f"Backtest of {Path(args.config).name} on {Path(args.candles).name}"
    if args.period_from or args.period_to:
        title += f" from {args.period_from or 'its start'} until {args.period_to or 'its end'}"
    table = Table(title=title, show_header=False)
    table.add_column(justify="left")
    table.add_column(justify="right")
    for key in ("candles", "gaps", "deals_closed", "deals_open", "take_profits", "stop_losses",
                *(k for k in ("trailing_take_profits", "take_profit_steps_filled",
                              "trailing_stop_losses") if k in s),
                "realized_pnl", "unrealized_pnl", "total_pnl", "fees_closed_deals", "win_rate",
                "profit_factor", "roi", "market_change", "max_safety_orders_used",
                "avg_deal_seconds", "longest_deal_seconds", "max_drawdown",
                "max_capital_committed", "orders_rejected", "bot_error", "events", "run_id"):
        value = s.get(key)
        if key in ("win_rate", "roi", "market_change"):
            shown = percent(value)
        elif key.endswith("_seconds"):
            shown = duration(value)
        else:
            shown = short(value)
        table.add_row(key.removesuffix("_seconds").replace("_", " "), shown)
    console.print(table)
    if args.deals and (s.get("deals") or s.get("open_deal")):
        console.print(_deals_table(s["deals"], s.get("open_deal")))
    if args.store == "memory":
        console.print("[dim]events were kept in memory only; use --store to keep them[/dim]")


def _deals_table(closed: list[dict], still_open: dict | None):
    from rich.table import Table

    table = Table(title="Deals (times UTC)")
    stepped = any("sells" in d for d in [*closed, *filter(None, [still_open])])
    for col in ("opened", "closed", "reason", "SOs", "entry", "avg entry", "exit", "P/L",
                *(["sells (amount @ price)"] * stepped)):
        table.add_column(col, justify="right", no_wrap=True)
    rows = [(d, _when(d["closed"]), d["reason"].replace("_", " "), short(d["exit"]),
             short(d["pnl"])) for d in closed]
    if still_open:  # its P/L is unrealized: marked at the last close
        rows.append((still_open, "still open", "unrealized", "-",
                     short(still_open["unrealized_pnl"])))
    for d, closed_at, reason, exit_price, pnl in rows:
        sells = [", ".join(f"{short(x['amount'])} @ {short(x['price'])}"
                           for x in d.get("sells", ()))] * stepped
        table.add_row(_when(d["opened"]), closed_at, reason, str(d["safety_orders"]),
                      short(d["entry"]), short(d["avg_entry"]), exit_price, pnl, *sells)
    return table


def _when(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{rest // 60}m"]
    return " ".join(parts[:2])


def percent(value) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def short(value) -> str:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return f"{value:.8f}".rstrip("0").rstrip(".") if value != value.to_integral() else (
            f"{value:.0f}")
    return "-" if value is None else str(value)

"""tradetape dca-plan --config bot.json --price 30000 [--json]"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="bot configuration JSON")
    parser.add_argument("--price", required=True, help="entry price of the base order")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


FIELDS = (
    "n", "deviation_pct", "price", "quote", "units", "total_quote", "total_units",
    "average_price", "take_profit_price",
)


def run(args: argparse.Namespace) -> int:
    from api.commands.bot_config import load_bot_config
    from api.commands.common import print_json
    from domain.dca import ladder
    from domain.numbers import PRICE, parse_number

    config = load_bot_config(args.config)
    levels = ladder(config, parse_number(args.price, "price", PRICE))
    if args.json:
        rows = []
        for level in levels:
            row = {name: getattr(level, name) for name in FIELDS}
            row["n"] = level.n
            row["stop_loss_price"] = level.stop_loss_price
            rows.append({k: (v if k == "n" or v is None else str(v)) for k, v in row.items()})
        print_json({"pair": config.pair, "levels": rows})
        return 0
    _print_table(config.pair, levels)
    return 0


def _print_table(pair: str, levels) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"DCA ladder for {pair}")
    for title in ("#", "dev %", "price", "quote", "units", "total quote", "avg price", "TP price"):
        table.add_column(title, justify="right", no_wrap=True)
    for lv in levels:
        table.add_row(
            "base" if lv.n == 0 else str(lv.n),
            _fmt(lv.deviation_pct, 4),
            _fmt(lv.price, 8),
            _fmt(lv.quote, 8),
            _fmt(lv.units, 8),
            _fmt(lv.total_quote, 8),
            _fmt(lv.average_price, 8),
            _fmt(lv.take_profit_price, 8),
        )
    Console(width=200).print(table)


def _fmt(value, places: int) -> str:
    text = f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text

"""tradetape dca-plan --config bot.json --price 30000 [--exchange ID [--sandbox]] [--json]"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="bot configuration JSON")
    parser.add_argument("--price", required=True, help="entry price of the base order")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--exchange", metavar="ID",
                        help="flag the levels this exchange would refuse (its minimum amount "
                             "and order value for the pair, read through ccxt)")
    parser.add_argument("--sandbox", action="store_true",
                        help="with --exchange: its sandbox (TRADETAPE_SANDBOX_HOST applies)")


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
    problems = _exchange_problems(args, config.pair, levels) if args.exchange else None
    if args.json:
        rows = []
        for level in levels:
            row = {name: getattr(level, name) for name in FIELDS}
            row["n"] = level.n
            row["stop_loss_price"] = level.stop_loss_price
            row = {k: (v if k == "n" or v is None else str(v)) for k, v in row.items()}
            if problems is not None:
                row["exchange_problem"] = problems[level.n]
            rows.append(row)
        answer = {"pair": config.pair, "levels": rows}
        if problems is not None:
            answer["exchange"] = args.exchange
        print_json(answer)
        return 0
    _print_table(config.pair, levels, problems)
    return 0


def _exchange_problems(args: argparse.Namespace, pair: str, levels) -> dict[int, str | None]:
    """Each level's refusal by the exchange (its order rounded down to the amount step as
    the exchange would take it), or None."""
    from api.commands.common import EXIT_FAILED, CommandError
    from application.bootstrap import open_market_rules
    from domain.errors import DomainError
    from domain.market_rules import amount_in_steps, minimum_problem

    try:
        rules = open_market_rules(args.exchange, sandbox=args.sandbox)(pair)
    except DomainError as error:  # the exchange failed to answer (1), or a wrong name (2)
        failed = error.code in ("EXCHANGE_UNAVAILABLE", "EXCHANGE_ERROR")
        raise CommandError(error.code, error.message, EXIT_FAILED if failed else 2) from None
    if rules is None:
        return {level.n: None for level in levels}
    return {level.n: minimum_problem(rules, pair, amount_in_steps(level.units, rules),
                                     level.price)
            for level in levels}


def _print_table(pair: str, levels, problems: dict[int, str | None] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"DCA ladder for {pair}")
    for title in ("#", "dev %", "price", "quote", "units", "total quote", "avg price", "TP price"):
        table.add_column(title, justify="right", no_wrap=True)
    if problems is not None:
        table.add_column("exchange", no_wrap=True)
    for lv in levels:
        extra = [] if problems is None else [
            "ok" if problems[lv.n] is None else problems[lv.n].split(":")[0]]
        table.add_row(
            "base" if lv.n == 0 else str(lv.n),
            _fmt(lv.deviation_pct, 4),
            _fmt(lv.price, 8),
            _fmt(lv.quote, 8),
            _fmt(lv.units, 8),
            _fmt(lv.total_quote, 8),
            _fmt(lv.average_price, 8),
            _fmt(lv.take_profit_price, 8),
            *extra,
        )
    Console(width=220).print(table)
    for lv in levels:
        if problems is not None and problems[lv.n] is not None:
            name = "base order" if lv.n == 0 else f"safety order {lv.n}"
            print(f"{name}: {problems[lv.n]}")


def _fmt(value, places: int) -> str:
    text = f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text

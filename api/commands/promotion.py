"""tradetape promotion BOT_ID [--as-of ISO-TIME] [--json] [--database URL]

What the paper → live promotion gate says about a bot, now or as it said at a past moment:
its paper record from the events recorded by then, and every rule with its figures
(thresholds: the server's ``TRADETAPE_PROMOTION_*`` settings). Exit 0 when it passes, 1 when
a rule is missed, 2 for a usage error."""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bot_id", metavar="BOT_ID", help="the paper bot's id")
    parser.add_argument("--as-of", metavar="ISO-TIME",
                        help="as the gate said then (ISO 8601; a time without zone is UTC)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(parser)


def run(args: argparse.Namespace) -> int:
    import os

    from api.commands.common import EXIT_FAILED, EXIT_OK, parse_time, print_json
    from api.commands.events import _parse_id
    from application.bootstrap import open_trading
    from application.promotion import paper_record
    from application.server_settings import promotion_rules
    from domain.bots import Bot
    from domain.promotion import judge

    bot_id = _parse_id(args.bot_id)
    rules = promotion_rules(os.environ)
    trading = open_trading(args.database)
    try:
        trading.load(bot_id, Bot)  # NOT_FOUND for anything else
        as_of = parse_time(args.as_of) if args.as_of else trading.clock.now()
        record = paper_record(trading, bot_id, as_of)
    finally:
        trading.close()
    outcomes = judge(record, rules)
    passed = all(o.passed for o in outcomes)
    if args.json:
        print_json({"bot_id": str(bot_id), "as_of": as_of.isoformat(), "passed": passed,
                    "running_seconds": record.running_seconds,
                    "closed_deals": record.closed_deals, "wins": record.wins,
                    "realized_profit": record.realized_pnl,
                    "max_committed_quote": record.max_committed_quote,
                    "rules": [vars(o) for o in outcomes]})
    else:
        print(f"bot {bot_id} as of {as_of.isoformat()}: "
              f"{'passes the promotion gate' if passed else 'refused'}")
        for o in outcomes:
            print(f"  {'ok  ' if o.passed else 'MISS'} {o.code}: {o.message}")
    return EXIT_OK if passed else EXIT_FAILED

"""tradetape corrections fees --bot ID --fee-rate RATE --reason TEXT [--from T] [--to T]
[--actor NAME] [--dry-run] [--json] [--database URL]

Corrects the fees of a bot's fills without rewriting history: every fill of the bot in the
period (the fill's own time, from inclusive, to exclusive) is charged again under the
proportional fee rule at RATE, and each deal whose fees change gets a ``Deal.FeesCorrected``
event naming the operator and the reason, all in one transaction. P/L and balances change from
the correction on; ``--as-of`` a moment before it shows what was believed then. ``--dry-run``
shows what would change and records nothing: with the rate the venue charged it finds
nothing, which is how recorded fees are checked against their fills.
"""

from __future__ import annotations

import argparse

from api.commands.actors import add_actor_option, operator_of
from api.commands.common import EXIT_OK, add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fees = actions.add_parser("fees", help="charge a bot's fills again under a fee rate",
                              description="charge a bot's fills again under a fee rate")
    fees.add_argument("--bot", required=True, metavar="BOT_ID")
    fees.add_argument("--fee-rate", required=True, metavar="RATE",
                      help="the rate the fills should have paid, e.g. 0.00075 (0.075%%)")
    fees.add_argument("--reason", required=True, help="why: recorded with the correction")
    fees.add_argument("--from", dest="since", metavar="TIME",
                      help="fills at or after this time (ISO 8601, UTC unless it says)")
    fees.add_argument("--to", dest="until", metavar="TIME", help="fills before this time")
    add_actor_option(fees)
    fees.add_argument("--dry-run", action="store_true", help="show it, record nothing")
    fees.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(fees)


def run(args: argparse.Namespace) -> int:
    from uuid import UUID

    from api.commands.common import CommandError, parse_time, print_json
    from application.bootstrap import open_trading
    from application.corrections import correct_fees

    try:
        bot_id = UUID(args.bot)
    except ValueError:
        raise CommandError("INVALID_ID", f"--bot {args.bot!r} is not a bot id") from None
    since = parse_time(args.since, "--from") if args.since else None
    until = parse_time(args.until, "--to") if args.until else None
    trading = open_trading(args.database)
    try:
        result = correct_fees(trading, bot_id, args.fee_rate.strip(), args.reason,
                              operator_of(args), since, until, dry_run=args.dry_run)
    finally:
        trading.close()
    if args.json:
        print_json(as_json(result))
    else:
        print_summary(result)
    return EXIT_OK


def as_json(result) -> dict:
    return {
        "bot_id": result.bot_id, "recorded": result.recorded,
        "correlation_id": result.correlation_id, "rule": result.rule,
        "reason": result.reason, "fills": result.fills, "fee_change": result.total,
        "deals": [{"deal_id": d.deal_id, "buy_fee_change": d.change("buy"),
                   "sell_fee_change": d.change("sell"),
                   "fills": [{"order_id": f.order_id, "side": f.side, "at": f.at,
                              "price": f.price, "amount": f.amount, "fee": f.recorded,
                              "corrected_fee": f.corrected} for f in d.fills]}
                  for d in result.deals],
    }


def print_summary(result) -> None:
    verb = "corrected" if result.recorded else "would correct"
    if not result.deals:
        print(f"nothing to correct: every fill of bot {result.bot_id} in that period paid "
              f"what {result.rule.partition(':')[0]} gives")
        return
    print(f"{verb} {result.fills} fills in {len(result.deals)} deals of bot {result.bot_id}: "
          f"fees {result.total:+} in all ({result.rule})")
    for deal in result.deals:
        print(f"  deal {deal.deal_id}: buys {deal.change('buy'):+}, "
              f"exit {deal.change('sell'):+}")

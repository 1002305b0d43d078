"""tradetape subscriptions sweep [--database URL]

Expire every subscription whose grace (``TRADETAPE_GRACE_DAYS`` after a failed payment) has
passed, pausing the bots beyond the FREE plan's limits; for cron, beside the sweep the
server runs daily. Safe to run any number of times: what is expired stays expired.
"""

from __future__ import annotations

import argparse

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sweep = actions.add_parser("sweep", help="expire subscriptions past their grace")
    add_database_option(sweep)


def run(args: argparse.Namespace) -> int:
    from application.bootstrap import open_billing, open_trading

    trading = open_trading(args.database)
    try:
        expired = open_billing(trading).sweep()
        print(f"{len(expired)} subscription(s) expired" + "".join(
            f"\n  {user}" for user in expired))
        return 0
    finally:
        trading.close()

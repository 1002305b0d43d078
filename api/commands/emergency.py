"""tradetape emergency stop --reason TEXT | resume [--reason TEXT] [--actor NAME]

The trading switch from the command line: ``stop`` halts every bot (no deal opens, no order
is placed) on every server using the database, from their next candle on, until ``resume``.
Recorded as ``operator:NAME`` (``--actor``, default: the OS user). ``status`` says where
the switch stands.
"""

from __future__ import annotations

import argparse

from api.commands.actors import add_actor_option
from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stop = actions.add_parser("stop", help="halt all trading now",
                              description="halt all trading: no deal opens, no order is "
                                          "placed until trading resumes")
    stop.add_argument("--reason", required=True, help="why (recorded with the stop)")
    resume = actions.add_parser("resume", help="let trading carry on",
                                description="let trading carry on after an emergency stop")
    resume.add_argument("--reason", default=None, help="why (recorded with the resume)")
    for sub in (stop, resume):
        add_database_option(sub)
        add_actor_option(sub)
    status = actions.add_parser("status", help="is trading halted, and why")
    status.add_argument("--json", action="store_true", help="a JSON object on stdout")
    add_database_option(status)


def run(args: argparse.Namespace) -> int:
    from api.commands.actors import operator_of
    from application.bootstrap import open_trading
    from application.operations import Operations

    actor = operator_of(args) if args.action != "status" else None
    trading = open_trading(args.database)
    try:
        operations = Operations(trading)
        if args.action == "stop":
            operations.emergency_stop(_reason(args.reason), actor)
            print(f"trading halted by {actor}: {args.reason.strip()}")
        elif args.action == "resume":
            operations.emergency_resume(actor, args.reason)
            print(f"trading resumed by {actor}")
        else:
            return _status(trading, args)
        return 0
    finally:
        trading.close()


def _reason(text: str) -> str:
    from api.commands.common import CommandError

    if not text.strip():
        raise CommandError("REASON_REQUIRED", "--reason: say why trading is halted")
    return text


def _status(trading, args: argparse.Namespace) -> int:
    from api.commands.common import print_json

    switch = trading.trading_switch()
    halted = bool(switch and switch.halted)
    reason = switch.reason if halted else None
    if args.json:
        print_json({"halted": halted, "reason": reason})
    else:
        print(f"trading is halted: {reason}" if halted else "trading is running")
    return 0

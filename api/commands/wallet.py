"""tradetape wallet requirements|plans --owner ID [--json] [--database URL]

    tradetape wallet requirements --owner ID [--as-of ISO-TIME] [--json]
    tradetape wallet plans --owner ID [--status awaiting_deposit|ready_to_execute|...] [--json]

``requirements``: per account of the owner and asset, what its running bots may still
spend (``required``) against what it holds (``available``), the difference and ``health``
(ok, warning, critical), from the ``wallet`` and ``balances`` views (with ``--as-of``, the
events recorded by then through the same projections). ``plans``: the owner's funding
plans, oldest first, from their events."""

from __future__ import annotations

import argparse
from typing import Any

from api.commands.common import add_database_option

STATUSES = ("awaiting_deposit", "ready_to_execute", "executed", "cancelled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    requirements = actions.add_parser("requirements", help="capital needed against held")
    requirements.add_argument("--as-of", metavar="ISO-TIME", help=(
        "as the log stood at this time (a time without zone is UTC; not in the future)"))
    plans = actions.add_parser("plans", help="funding plans, oldest first")
    plans.add_argument("--status", choices=STATUSES, help="only plans with this status")
    for sub in (requirements, plans):
        sub.add_argument("--owner", required=True, metavar="ID",
                         help="the user's id (as `tradetape users list` shows it)")
        sub.add_argument("--json", action="store_true", help="one JSON object on stdout")
        add_database_option(sub)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import print_json
    from api.commands.common import print_table as _table

    report = _requirements(args) if args.action == "requirements" else _plans(args)
    if args.json:
        print_json(report)
    elif args.action == "requirements":
        _table("Wallet requirements" + (f" as of {report['as_of']}" if report["as_of"]
                                        else ""), report["accounts"],
               ("account_id", "kind", "asset", "required", "available", "surplus_deficit",
                "health"))
    else:
        _table("Funding plans", report["plans"],
               ("id", "status", "bot_id", "account_id", "amount", "asset"))
        for plan in report["plans"]:  # the messages are long: one line each, below
            print(f"{plan['id']}: {plan['message']}")
    return 0


def _requirements(args: argparse.Namespace) -> dict[str, Any]:
    from api.commands.readmodels import past_time, report_now_or_as_of
    from projections.balances import Balances
    from projections.wallet import WalletRequirements, wallet_requirements

    as_of = past_time(args.as_of) if args.as_of else None
    rows, position, head = report_now_or_as_of(
        args.database, WalletRequirements, as_of,
        lambda store: wallet_requirements(store, args.owner), also=(Balances,))
    return {"owner": args.owner, "as_of": as_of.isoformat() if as_of else None,
            "position": position, "lag": head - position, "accounts": rows}


def _plans(args: argparse.Namespace) -> dict[str, Any]:
    from api.commands.readmodels import open_views
    from application.funding import Funding
    from domain.funding import FundingStatus

    status = FundingStatus(args.status) if args.status else None
    with open_views(args.database) as views:
        plans = Funding(views.app, None).plans(args.owner, status)  # type: ignore[arg-type]
        return {"owner": args.owner, "plans": [_plan(p) for p in plans]}


def _plan(plan) -> dict[str, Any]:
    return {"id": str(plan.id), "status": plan.status.value, "bot_id": plan.bot_id,
            "account_id": plan.account_id, "asset": plan.asset, "required": plan.required,
            "available": plan.available, "amount": plan.amount,
            "transfer_from": plan.transfer_from, "transfer_amount": plan.transfer_amount,
            "message": plan.message, "reason": plan.reason,
            "created_at": plan.created_on.isoformat(),
            "updated_at": plan.modified_on.isoformat()}

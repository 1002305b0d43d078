"""tradetape billing report --month YYYY-MM [--as-of ISO-TIME] [--json] [--database URL]

A month of the double-entry billing ledger (the ``billing_ledger`` view, or with
``--as-of`` the events recorded by then through the same projection): per currency the
plans' revenue, refunds, net revenue, top-ups, wallet refunds and cash in, and every
account's balance.
"""

from __future__ import annotations

import argparse
import re

from api.commands.common import add_database_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    report = actions.add_parser("report", help="a month of revenue, refunds and top-ups")
    report.add_argument("--month", required=True, metavar="YYYY-MM")
    report.add_argument("--as-of", metavar="ISO-TIME",
                        help="as the log stood at this time (the events recorded by then)")
    report.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_database_option(report)


def run(args: argparse.Namespace) -> int:
    from api.commands.common import CommandError, print_json
    from api.commands.readmodels import past_time, report_now_or_as_of
    from projections.billing_ledger import BillingLedger, account_balances, billing_report

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        raise CommandError("INVALID_MONTH", f"--month {args.month!r}: a month is YYYY-MM")
    as_of = past_time(args.as_of) if args.as_of else None

    def make(store) -> dict:
        return {**billing_report(store, args.month),
                "accounts": [{k: r[k] for k in ("account", "currency", "balance")}
                             for r in account_balances(store)]}

    report, position, head = report_now_or_as_of(args.database, BillingLedger, as_of, make)
    report.update(as_of=as_of.isoformat() if as_of else None, position=position,
                  lag=head - position)
    if args.json:
        print_json(report)
        return 0
    when = f" as of {report['as_of']}" if report["as_of"] else ""
    print(f"billing {args.month}{when} ({report['entries']} entries)")
    for currency, f in report["currencies"].items():
        print(f"  {currency}: revenue {f['revenue']}, refunds {f['refunds']}, net "
              f"{f['net_revenue']}, top-ups {f['top_ups']}, wallet refunds "
              f"{f['wallet_refunds']}, cash in {f['cash_in']}")
    for row in report["accounts"]:
        print(f"  {row['account']:<48} {row['currency']} {row['balance']:>14}")
    return 0

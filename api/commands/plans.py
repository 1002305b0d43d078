"""tradetape plans create CODE --name TEXT --price AMOUNT [--currency USD] [--period month]
[--stripe-price price_…] [--max-bots N] [--max-live-bots N] [--max-webhooks N]
[--feature NAME ...] | update CODE [same options] | list [--json]

Plans are data: ``create`` records a new plan, ``update`` a new version of one (subscribers
keep the version they bought until they renew), ``list`` shows them cheapest first. The
default catalogue (FREE, PRO) is created the first time this or the server runs.
"""

from __future__ import annotations

import argparse

from api.commands.actors import add_actor_option
from api.commands.common import add_database_option

CHANGES = {"name": "name", "price": "price", "currency": "currency", "period": "period",
           "stripe_price": "stripe_price", "max_bots": "max_bots",
           "max_live_bots": "max_live_bots", "max_webhooks": "max_webhooks",
           "features": "features"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("create", "define a new plan"), ("update", "a new version of a plan")):
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("code", help="the plan's code, e.g. PRO")
        sub.add_argument("--name", required=name == "create")
        sub.add_argument("--price", required=name == "create", help="e.g. 10.00")
        sub.add_argument("--currency", default="USD" if name == "create" else None)
        sub.add_argument("--period", choices=("month", "year"),
                         default="month" if name == "create" else None)
        sub.add_argument("--stripe-price", metavar="PRICE_ID",
                         help="the Stripe price a checkout of this plan sells")
        for limit in ("max-bots", "max-live-bots", "max-webhooks"):
            sub.add_argument(f"--{limit}", type=int, metavar="N")
        sub.add_argument("--feature", action="append", dest="features", metavar="NAME",
                         help="a feature flag (repeat): live_trading, webhooks, ...")
        add_database_option(sub)
        add_actor_option(sub)
    listing = actions.add_parser("list", help="the plans, cheapest first")
    listing.add_argument("--json", action="store_true", help="a JSON list on stdout")
    add_database_option(listing)


def run(args: argparse.Namespace) -> int:
    import os

    from application.bootstrap import open_trading
    from application.plans import PlanCatalogue

    trading = open_trading(args.database)
    try:
        catalogue = PlanCatalogue(trading, os.environ.get("TRADETAPE_STRIPE_PRICE_PRO") or None)
        catalogue.ensure_defaults()
        if args.action == "list":
            return _list(catalogue, args.json)
        return _change(catalogue, args)
    finally:
        trading.close()


def _change(catalogue, args: argparse.Namespace) -> int:
    from api.commands.actors import operator_of
    from domain.plans import PlanTerms

    actor = operator_of(args)
    changes = {field: getattr(args, key) for key, field in CHANGES.items()
               if getattr(args, key) is not None}
    if "features" in changes:
        changes["features"] = tuple(changes["features"])
    if args.action == "create":
        plan = catalogue.create(PlanTerms(code=args.code, **changes), actor)
    else:
        plan = catalogue.update(args.code, actor, **changes)
    t = plan.terms
    print(f"plan {t.code} version {plan.version}: {t.price} {t.currency} a {t.period}, "
          f"{t.max_bots} bots, {t.max_live_bots} live, {t.max_webhooks} webhooks"
          f"{', Stripe price ' + t.stripe_price if t.stripe_price else ''}")
    return 0


def _list(catalogue, as_json: bool) -> int:
    from api.commands.common import print_json
    from application.plans import plan_as_json

    plans = [plan_as_json(p) for p in catalogue.all()]
    if as_json:
        print_json(plans)
        return 0
    for p in plans:
        print(f"{p['code']:<10} v{p['version']:<3} {p['price']:>9} {p['currency']} /"
              f"{p['period']:<5} bots {p['max_bots']:<4} live {p['max_live_bots']:<4} "
              f"webhooks {p['max_webhooks']:<4} {' '.join(p['features'])}"
              f"  {p['stripe_price'] or ''}".rstrip())
    return 0

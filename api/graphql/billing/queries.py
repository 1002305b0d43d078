"""``plans`` (everyone), the caller's ``subscription`` (the current one) and
``subscriptions`` (every one Stripe told of), ``entitlements`` and ``billingHistory`` (a
connection, newest first); for administrators, ``unsoldSubscriptions``."""

from __future__ import annotations

import base64
from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.billing.types import (
    BillingConnection,
    BillingEdge,
    BillingEntry,
    BillingSubscription,
    Entitlements,
    Plan,
    StripeSubscription,
    UnsoldSubscription,
)
from api.graphql.common import PageInfo, utc
from api.graphql.permissions import IsAdmin, IsAuthenticated, Public

DEFAULT_PAGE = 50


def billing_of(info: Info):
    billing = info.context.runtime.billing
    if billing is None:
        raise GraphQLError("this server has no billing", extensions={
            "code": "BILLING_UNAVAILABLE"})
    return billing


def subscription_of(billing, user_id: str, as_of: datetime | None = None
                    ) -> BillingSubscription | None:
    sub = billing.subscription(user_id, as_of)
    if sub is None:
        return None
    plan = billing.catalogue.by_id(sub.plan_id)
    terms = billing.catalogue.at_version(sub.plan_id, sub.plan_version)
    return BillingSubscription(
        plan=Plan.of(plan, terms, sub.plan_version), status=sub.status.value,
        current_period_end=sub.current_period_end,
        cancel_at_period_end=sub.cancel_at_period_end, grace_ends_at=sub.grace_ends_at)


def subscriptions_of(billing, user_id: str, as_of: datetime | None = None
                     ) -> list[StripeSubscription]:
    """The current subscription first, then the others, newest first (by Stripe's
    creation time; an undated one counts as older)."""
    sub = billing.subscription(user_id, as_of)
    if sub is None:
        return []
    current = {"status": sub.status, "plan_id": sub.plan_id, "plan_version": sub.plan_version,
               "period_start": sub.current_period_start,
               "period_end": sub.current_period_end,
               "cancel_at_period_end": sub.cancel_at_period_end,
               "grace_ends_at": sub.grace_ends_at, "stripe_price": None}
    others = sorted(sub.others.items(), key=lambda o: (o[1]["created"], o[1]["told_at"]),
                    reverse=True)
    return [_stripe_subscription(billing, stripe_sub, known, stripe_sub == sub.stripe_subscription)
            for stripe_sub, known in [(sub.stripe_subscription, current), *others]]


def _stripe_subscription(billing, stripe_sub: str, known: dict, current: bool
                         ) -> StripeSubscription:
    plan, price = None, known["stripe_price"]
    if known["plan_id"] is not None:
        terms = billing.catalogue.at_version(known["plan_id"], known["plan_version"])
        plan = Plan.of(billing.catalogue.by_id(known["plan_id"]), terms, known["plan_version"])
        price = price or terms.stripe_price
    return StripeSubscription(
        stripe_subscription=stripe_sub, current=current, status=known["status"].value,
        plan=plan, stripe_price=price, current_period_start=known["period_start"],
        current_period_end=known["period_end"],
        cancel_at_period_end=known["cancel_at_period_end"],
        grace_ends_at=known["grace_ends_at"])


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"billing:{index}".encode()).decode()


def _offset(after: str | None) -> int:
    if after is None:
        return 0
    try:
        kind, _, index = base64.urlsafe_b64decode(after.encode()).decode().partition(":")
        if kind == "billing" and index.isdigit():
            return int(index) + 1
    except (ValueError, UnicodeDecodeError):
        pass
    raise GraphQLError("not a cursor of billingHistory", extensions={
        "code": "INVALID_CURSOR"})


@strawberry.type
class BillingQueries:
    @strawberry.field(permission_classes=[Public],
                      description="The plans on sale, cheapest first")
    async def plans(self, info: Info) -> list[Plan]:
        billing = billing_of(info)
        return [Plan.of(p) for p in await info.context.read.slow(billing.catalogue.all)]

    @strawberry.field(permission_classes=[IsAuthenticated],
                      description=("Your subscription (null: none, you have FREE's "
                                   "limits); asOf: as it stood then"))
    async def subscription(self, info: Info, as_of: datetime | None = None
                           ) -> BillingSubscription | None:
        ctx = info.context
        return await ctx.read.slow(subscription_of, billing_of(info), ctx.user_id,
                                   utc(as_of))

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Every Stripe subscription of yours as Stripe last told it: the current one first "
        "(the one `subscription` shows), then the others, newest first, where you fall back "
        "to should the current one end (asOf: as they stood then)"))
    async def subscriptions(self, info: Info, as_of: datetime | None = None
                            ) -> list[StripeSubscription]:
        ctx = info.context
        return await ctx.read.slow(subscriptions_of, billing_of(info), ctx.user_id,
                                   utc(as_of))

    @strawberry.field(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "Users' Stripe subscriptions still live at a price no plan sells: they entitle "
        "nothing until a plan sells the price (`tradetape plans update CODE --stripe-price`)"))
    async def unsold_subscriptions(self, info: Info) -> list[UnsoldSubscription]:
        found = await info.context.read.slow(billing_of(info).unpriced)
        return [UnsoldSubscription(user_id=strawberry.ID(user), stripe_subscription=sub,
                                   stripe_price=price, status=status)
                for user, sub, price, status in found]

    @strawberry.field(permission_classes=[IsAuthenticated],
                      description="What your plan lets you do now (asOf: then)")
    async def entitlements(self, info: Info, as_of: datetime | None = None) -> Entitlements:
        ctx = info.context
        found = await ctx.read.slow(billing_of(info).entitlements.as_dict, ctx.user_id,
                                    utc(as_of))
        return Entitlements(**found)

    @strawberry.field(permission_classes=[IsAuthenticated], description=(
        "Your invoices paid, refunds, top-ups and wallet payments, newest first (asOf: "
        "as they stood then)"))
    async def billing_history(self, info: Info, first: int | None = DEFAULT_PAGE,
                              after: str | None = None, as_of: datetime | None = None
                              ) -> BillingConnection:
        from application.billing_history import billing_history

        ctx = info.context
        size, start = first or DEFAULT_PAGE, _offset(after)
        entries = await ctx.read.slow(billing_history, ctx.runtime.trading, ctx.user_id,
                                      utc(as_of))
        page = entries[start:start + size]
        edges = [BillingEdge(node=BillingEntry(kind=e.kind, reference=e.reference,
                                               amount=e.amount, currency=e.currency,
                                               at=e.at), cursor=_cursor(start + i))
                 for i, e in enumerate(page)]
        return BillingConnection(edges=edges, page_info=PageInfo(
            has_next_page=start + size < len(entries),
            end_cursor=edges[-1].cursor if edges else None))

"""``definePlan`` (administrators), ``startCheckout(planId)`` → ``{ url }``,
``billingPortal`` → ``{ url }``, ``cancelSubscription`` and ``resumeSubscription``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.billing.queries import billing_of, subscription_of
from api.graphql.billing.types import (
    BillingErrors,
    CheckoutLink,
    CheckoutResult,
    Plan,
    PlanInput,
    PlanResult,
    SubscriptionResult,
)
from api.graphql.commands import execute
from api.graphql.permissions import IsAdmin, IsAuthenticated
from domain.errors import DomainError
from domain.plans import PlanTerms


@strawberry.type
class BillingMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdmin],
                         description="Create a plan, or a new version of it")
    async def define_plan(self, info: Info, input: PlanInput) -> PlanResult:
        billing, actor = billing_of(info), info.context.user_id
        terms = PlanTerms(input.code, input.name, input.price, input.currency, input.period,
                          input.stripe_price, input.max_bots, input.max_live_bots,
                          input.max_webhooks, tuple(input.features))
        try:
            plan = await execute(info.context.runtime,
                                 lambda: billing.catalogue.define(terms, actor))
        except DomainError as error:
            return BillingErrors.of(error)
        return Plan.of(plan)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "A Stripe Checkout page to subscribe to a plan (its code or id)"))
    async def start_checkout(self, info: Info, plan_id: strawberry.ID) -> CheckoutResult:
        billing, ctx = billing_of(info), info.context
        principal = ctx.principal
        user = await ctx.loaders.users.load(ctx.user_id)
        code = _code_of(billing, str(plan_id))
        try:
            url = await execute(ctx.runtime, lambda: billing.start_checkout(
                str(principal.user_id), getattr(user, "email", None), code))
        except DomainError as error:
            return BillingErrors.of(error)
        return CheckoutLink(url=url)

    @strawberry.mutation(permission_classes=[IsAuthenticated],
                         description="Stripe's customer portal (cards, invoices)")
    async def billing_portal(self, info: Info) -> CheckoutResult:
        billing, ctx = billing_of(info), info.context
        try:
            url = await execute(ctx.runtime, lambda: billing.portal_url(ctx.user_id))
        except DomainError as error:
            return BillingErrors.of(error)
        return CheckoutLink(url=url)

    @strawberry.mutation(permission_classes=[IsAuthenticated],
                         description="Cancel at the end of the period paid for")
    async def cancel_subscription(self, info: Info) -> SubscriptionResult:
        return await _cancel(info, True)

    @strawberry.mutation(permission_classes=[IsAuthenticated],
                         description="Keep a subscription set to cancel at its period's end")
    async def resume_subscription(self, info: Info) -> SubscriptionResult:
        return await _cancel(info, False)


async def _cancel(info: Info, cancel: bool) -> SubscriptionResult:
    billing, ctx = billing_of(info), info.context
    try:
        await execute(ctx.runtime, lambda: billing.cancel(ctx.user_id, ctx.user_id,
                                                          cancel=cancel))
    except DomainError as error:
        return BillingErrors.of(error)
    return await ctx.read.slow(subscription_of, billing, ctx.user_id)


def _code_of(billing, text: str) -> str:
    """A plan named by its code (``PRO``) or its id."""
    for plan in billing.catalogue.all():
        if str(plan.id) == text.strip():
            return plan.terms.code
    return text.strip().upper()


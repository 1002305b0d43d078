"""The prepaid wallet: ``wallet`` (balances), ``topUp(amount, currency, method)`` and
``payFromWallet``; and the administrators' ``revenue(month)`` from the billing ledger."""

from __future__ import annotations

import re
from decimal import Decimal

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from api.graphql.billing.queries import billing_of, subscription_of
from api.graphql.billing.types import (
    BillingErrors,
    RefundRequested,
    RefundResult,
    Revenue,
    SubscriptionResult,
    TopUp,
    TopUpMethod,
    TopUpResult,
    WalletBalance,
)
from api.graphql.commands import execute
from api.graphql.permissions import IsAdmin, IsAuthenticated
from domain.errors import DomainError


@strawberry.type
class WalletQueries:
    @strawberry.field(permission_classes=[IsAuthenticated],
                      description="Your prepaid wallet's balance per currency")
    async def wallet(self, info: Info) -> list[WalletBalance]:
        from application.wallet_payments import wallet_of

        ctx = info.context
        wallet = await ctx.read.slow(wallet_of, billing_of(info), ctx.user_id)
        balances = wallet.balances if wallet is not None else {}
        return [WalletBalance(currency=c, balance=b) for c, b in sorted(balances.items())]

    @strawberry.field(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "A month (YYYY-MM) of the billing ledger per currency"))
    async def revenue(self, info: Info, month: str) -> list[Revenue]:
        from projections.billing_ledger import billing_report

        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise GraphQLError("a month is YYYY-MM", extensions={"code": "INVALID_MONTH"})
        report = await info.context.read.slow(info.context.read.run, billing_report, month)
        return [Revenue(currency=c, **f) for c, f in report["currencies"].items()]


@strawberry.type
class WalletMutations:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Add money to your wallet: a Stripe PaymentIntent (PROMPTPAY: THB, with its QR code)"))
    async def top_up(self, info: Info, amount: Decimal, currency: str,
                     method: TopUpMethod) -> TopUpResult:
        from application.wallet_payments import top_up

        billing, ctx = billing_of(info), info.context
        user = await ctx.loaders.users.load(ctx.user_id)
        try:
            made = await execute(ctx.runtime, lambda: top_up(
                billing, ctx.user_id, getattr(user, "email", None), amount, currency,
                method.value))
        except DomainError as error:
            return BillingErrors.of(error)
        return TopUp(payment_intent_id=made.payment_intent, client_secret=made.client_secret,
                     status=made.status, amount=made.amount, currency=made.currency,
                     method=TopUpMethod(made.method), qr_code_url=made.qr_code_url,
                     qr_code_data=made.qr_code_data)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description=(
        "Pay your past-due or expired subscription's next period from your wallet"))
    async def pay_from_wallet(self, info: Info) -> SubscriptionResult:
        from application.wallet_payments import pay_from_wallet

        billing, ctx = billing_of(info), info.context
        try:
            await execute(ctx.runtime, lambda: pay_from_wallet(billing, ctx.user_id,
                                                               ctx.user_id))
        except DomainError as error:
            return BillingErrors.of(error)
        return await ctx.read.slow(subscription_of, billing, ctx.user_id)

    @strawberry.mutation(permission_classes=[IsAuthenticated, IsAdmin], description=(
        "Refund a payment through Stripe: all of it, or amount in currency"))
    async def refund_payment(self, info: Info, payment_intent_id: str,
                             amount: Decimal | None = None, currency: str | None = None
                             ) -> RefundResult:
        billing, ctx = billing_of(info), info.context
        try:
            refund = await execute(ctx.runtime, lambda: billing.refund(
                payment_intent_id, amount, currency, ctx.user_id))
        except DomainError as error:
            return BillingErrors.of(error)
        return RefundRequested(refund_id=refund)

"""Billing's GraphQL types. The subscription's type is ``BillingSubscription``: the root
``Subscription`` type (websocket operations) already has that name."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry

from api.graphql.common import FieldError, PageInfo
from domain.errors import DomainError
from domain.plans import Plan as PlanAggregate
from domain.plans import PlanTerms


@strawberry.type
class Plan:
    id: strawberry.ID
    code: str
    name: str
    price: Decimal
    currency: str
    period: str
    stripe_price: str | None
    max_bots: int
    max_live_bots: int
    max_webhooks: int
    features: list[str]
    version: int

    @classmethod
    def of(cls, plan: PlanAggregate, terms: PlanTerms | None = None,
           version: int | None = None) -> Plan:
        t = terms or plan.terms
        return cls(id=strawberry.ID(str(plan.id)), code=t.code, name=t.name, price=t.price,
                   currency=t.currency, period=t.period, stripe_price=t.stripe_price,
                   max_bots=t.max_bots, max_live_bots=t.max_live_bots,
                   max_webhooks=t.max_webhooks, features=list(t.features),
                   version=version or plan.version)


@strawberry.type
class BillingSubscription:
    plan: Plan
    status: str  # trialing, active, past_due, expired, cancelled
    current_period_end: datetime
    cancel_at_period_end: bool
    grace_ends_at: datetime | None


@strawberry.type
class StripeSubscription:
    """One of your Stripe subscriptions as Stripe last told it: the current one (whose
    plan you have) or another one (where you fall back to should the current one end)."""

    stripe_subscription: str  # Stripe's id, sub_…
    current: bool
    status: str  # trialing, active, past_due, expired, cancelled
    plan: Plan | None  # null: at a Stripe price no plan sells (it entitles nothing)
    stripe_price: str | None
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    grace_ends_at: datetime | None


@strawberry.type
class UnsoldSubscription:
    """A user's Stripe subscription at a price no plan sells: it entitles nothing until
    `tradetape plans update CODE --stripe-price` names the price."""

    user_id: strawberry.ID
    stripe_subscription: str
    stripe_price: str
    status: str


@strawberry.type
class Entitlements:
    plan: str
    enforced: bool  # false: this server applies no plan limits (billing off)
    max_bots: int
    max_live_bots: int
    max_webhooks: int
    features: list[str]


@strawberry.type
class CheckoutLink:
    url: str


@strawberry.type
class BillingErrors:
    code: str
    message: str
    errors: list[FieldError]

    @classmethod
    def of(cls, error: DomainError) -> BillingErrors:
        from api.graphql.common import field_error

        found = field_error(error)
        return cls(code=found.code, message=found.message, errors=[found])


@strawberry.type
class BillingEntry:
    """One invoice paid, refund, top-up or wallet payment."""

    kind: str  # invoice_paid, refund, top_up, wallet_payment, wallet_refund
    reference: str
    amount: Decimal
    currency: str
    at: datetime


@strawberry.type
class BillingEdge:
    node: BillingEntry
    cursor: str


@strawberry.type
class BillingConnection:
    edges: list[BillingEdge]
    page_info: PageInfo


@strawberry.input
class PlanInput:
    code: str
    name: str
    price: Decimal
    currency: str = "USD"
    period: str = "month"
    stripe_price: str | None = None
    max_bots: int = 1
    max_live_bots: int = 0
    max_webhooks: int = 0
    features: list[str] = strawberry.field(default_factory=list)


PlanResult = Annotated[Plan | BillingErrors, strawberry.union("PlanResult")]
CheckoutResult = Annotated[CheckoutLink | BillingErrors, strawberry.union("CheckoutResult")]
SubscriptionResult = Annotated[BillingSubscription | BillingErrors,
                               strawberry.union("SubscriptionResult")]


@strawberry.enum
class TopUpMethod(Enum):
    CARD = "CARD"
    PROMPTPAY = "PROMPTPAY"


@strawberry.type
class TopUp:
    """A PaymentIntent to pay; the wallet is credited when Stripe confirms the payment.
    PromptPay: show ``qrCodeUrl`` (or encode ``qrCodeData``) for the banking app."""

    payment_intent_id: str
    client_secret: str | None
    status: str | None
    amount: Decimal
    currency: str
    method: TopUpMethod
    qr_code_url: str | None
    qr_code_data: str | None


@strawberry.type
class WalletBalance:
    currency: str
    balance: Decimal


@strawberry.type
class Revenue:
    """One currency's month of the billing ledger."""

    currency: str
    revenue: Decimal
    refunds: Decimal
    net_revenue: Decimal
    top_ups: Decimal
    wallet_refunds: Decimal
    cash_in: Decimal


@strawberry.type
class RefundRequested:
    """Stripe took the refund; ``charge.refunded`` records it when Stripe tells."""

    refund_id: str


RefundResult = Annotated[RefundRequested | BillingErrors, strawberry.union("RefundResult")]
TopUpResult = Annotated[TopUp | BillingErrors, strawberry.union("TopUpResult")]

"""Top-ups of a user's prepaid wallet through Stripe (card or PromptPay) and renewals paid
from it. A top-up creates a PaymentIntent; the wallet is credited when Stripe tells
``payment_intent.succeeded`` (``application.stripe_webhooks``). A renewal from the wallet
debits the plan's price and starts the next period in one transaction; the sweep tries it
before expiring a past-due subscription. Stripe is told first (``settled_at_stripe``): the
invoice it keeps retrying on the card is marked paid outside Stripe, so the period is paid
once; should Stripe refuse, nothing is paid from the wallet (at the sweep the grace is over:
the subscription expires as an unpaid one, ``WALLET_RENEWAL_REFUSED``). Stripe not answering
(no connection, 5xx, 429) is no refusal: the sweep keeps the subscription and asks again with
backoff for up to ``OUTAGE_HOURS`` past the grace, then expires it as refused. Stripe is
asked with no lock held: its latency holds no trading step; only the saves take the
runner's lock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.errors import DomainError, NotFoundError
from domain.payments import PaymentProviderUnavailable, StripeLink, Wallet, wallet_id
from domain.plans import money_in, next_period_end, to_minor
from domain.subscriptions import Period, Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from application.billing import Billing

log = logging.getLogger("tradetape.billing")
METHODS = {"CARD": "card", "PROMPTPAY": "promptpay"}
# How long past its grace a user whose wallet holds the price waits for Stripe to come back
# (an outage at the sweep) before expiring as refused.
OUTAGE_HOURS = 24
RENEWED, REFUSED, WAITING = "renewed", "refused", "waiting"


@dataclass(frozen=True)
class TopUp:
    payment_intent: str
    client_secret: str | None
    status: str | None
    amount: Decimal
    currency: str
    method: str
    qr_code_url: str | None
    qr_code_data: str | None


def top_up(billing: Billing, user_id: str, email: str | None, amount: object,
           currency: str, method: str) -> TopUp:
    currency, method = currency.strip().upper(), method.strip().upper()
    if method not in METHODS:
        raise DomainError("CARD or PROMPTPAY", code="INVALID_METHOD", field="method")
    if method == "PROMPTPAY" and currency != "THB":
        raise DomainError("PromptPay takes THB only", code="UNSUPPORTED_CURRENCY",
                          field="currency")
    value = money_in(currency, amount)
    if value <= 0:
        raise DomainError("a top-up is more than zero", code="INVALID_AMOUNT", field="amount")
    gateway = billing.payments()
    intent = gateway.create_payment_intent(
        customer=billing.customer_of(user_id, email), amount_minor=to_minor(currency, value),
        currency=currency, method=METHODS[method], user_id=user_id, email=email)
    return TopUp(intent["id"], intent.get("client_secret"), intent.get("status"), value,
                 currency, method, intent.get("qr_code_url"), intent.get("qr_code_data"))


def wallet_of(billing: Billing, user_id: str) -> Wallet | None:
    try:
        return billing.trading.load(wallet_id(user_id), Wallet)
    except NotFoundError:
        return None


def renew_from_wallet(billing: Billing, sub: Subscription, actor: str) -> Wallet | None:
    """The next period of ``sub`` paid from the wallet, both changed and not saved: the
    wallet; None when the wallet is short or empty (nothing changed)."""
    plan = billing.catalogue.by_id(sub.plan_id)
    terms = plan.terms
    wallet = wallet_of(billing, sub.user_id)
    if wallet is None or wallet.balance(terms.currency) < terms.price:
        return None
    cause = billing.trading.cause(actor)
    start = sub.current_period_end
    reference = f"renewal:{start.date().isoformat()}"
    wallet.debit(cause, terms.currency, terms.price, reference, "renewal")
    sub.pay_invoice(cause, reference, terms.price, terms.currency, "wallet")
    sub.renew(cause, Period(sub.stripe_subscription, SubscriptionStatus.ACTIVE, start,
                            next_period_end(start, terms.period), plan.id, plan.version,
                            sub.cancel_at_period_end, sub.told_at))
    return wallet


def settled_at_stripe(billing: Billing, sub: Subscription, actor: str) -> list[StripeLink]:
    """Stripe told that the wallet pays ``sub``'s period: its open invoices (the failed
    payment Stripe retries on the card) marked paid outside Stripe, each linked to the user
    (``wallet-paid``) so that Stripe's ``invoice.paid`` of it records no card payment. Not
    saved; STRIPE_ERROR when Stripe refuses. A server without Stripe's key has nothing to
    tell (no link)."""
    if billing.gateway is None:
        return []
    cause = billing.trading.cause(actor)
    return [StripeLink.make(cause, "wallet-paid", invoice, sub.user_id)
            for invoice in billing.gateway.settle_open_invoices(sub.stripe_subscription)
            if billing.linked("wallet-paid", invoice) is None]


def renewed_from_wallet(billing: Billing, sub: Subscription, wallet: Wallet,
                        actor: str, grace_ended: datetime | None = None) -> str:
    """The sweep's renewal of ``sub`` from ``wallet`` (both changed by
    ``renew_from_wallet``, not saved): Stripe told first, outside the runner's lock, then
    both saved under it (checked against concurrent writers: ConcurrencyConflictError, the
    sweep decides again; Stripe, asked again, finds the invoice paid already and makes no
    charge): RENEWED. REFUSED when Stripe refused (a 4xx), or has not answered for
    ``OUTAGE_HOURS`` past the grace: nothing saved, the refusal kept for ``/health``
    (``Billing.refused_renewals``) with one error line, WALLET_RENEWAL_REFUSED. WAITING when
    Stripe did not answer (an outage) within that bound: nothing saved, the user kept for
    ``/health`` (``Billing.waiting_renewals``) and asked again at the sweep's next try.
    ``grace_ended``: when the grace of ``sub`` ended (before the renewal cleared it)."""
    try:
        told = settled_at_stripe(billing, sub, actor)
    except PaymentProviderUnavailable as error:
        now = billing.trading.cause(actor).at
        bound = (grace_ended or now) + timedelta(hours=OUTAGE_HOURS)
        if now < bound:
            billing.waiting_renewals[sub.user_id] = f"{error.code}: {error.message}"
            log.warning("the wallet of %s holds the price, but Stripe did not answer (%s); "
                        "asked again with backoff until %s", sub.user_id, error.message,
                        bound.isoformat())
            return WAITING
        return _refused(billing, sub, error, f"for {OUTAGE_HOURS} hours past the grace")
    except DomainError as error:
        return _refused(billing, sub, error, "")
    with billing.slots.lock:
        billing.trading.save_all(sub, wallet, *told)
    billing.refused_renewals.pop(sub.user_id, None)
    billing.waiting_renewals.pop(sub.user_id, None)
    log.info("subscription of %s renewed from the wallet", sub.user_id)
    return RENEWED


def _refused(billing: Billing, sub: Subscription, error: DomainError, how_long: str) -> str:
    billing.refused_renewals[sub.user_id] = f"{error.code}: {error.message}"
    log.error("WALLET_RENEWAL_REFUSED: the wallet of %s holds the price, but Stripe "
              "refused to be told it pays (%s: %s%s); its grace is over: it expires as "
              "unpaid (payFromWallet renews it once Stripe accepts)", sub.user_id,
              error.code, error.message, f", {how_long}" if how_long else "")
    return REFUSED


def pay_from_wallet(billing: Billing, user_id: str, actor: str) -> Subscription:
    """The user pays their past-due (or expired) subscription's next period now."""
    sub = billing.subscription(user_id)
    if sub is None or sub.status not in (SubscriptionStatus.PAST_DUE,
                                         SubscriptionStatus.EXPIRED):
        raise DomainError("no past-due subscription to pay", code="NOTHING_TO_PAY")
    before = (sub.status, list(sub.paused_bots))
    wallet = renew_from_wallet(billing, sub, actor)
    if wallet is None:
        raise DomainError("the wallet does not hold the plan's price",
                          code="INSUFFICIENT_WALLET_FUNDS")
    # Stripe first (refused: nothing saved), outside the runner's lock: Stripe's latency
    # holds no bot's step. The saves are checked against concurrent writers anyway.
    told = settled_at_stripe(billing, sub, actor)
    with billing.slots.lock:
        billing.commit([sub, wallet, *told], sub, before)
    billing.refused_renewals.pop(user_id, None)
    billing.waiting_renewals.pop(user_id, None)
    return sub

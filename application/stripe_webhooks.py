"""Stripe's events, each handled exactly once: what it changed is saved in one transaction
with a marker of its id, so a second delivery finds the marker and changes nothing, and a
handler that refuses or fails saves nothing (the endpoint answers non-2xx and Stripe
delivers the event again).

Order does not matter: every subscription fact carries the time Stripe recorded it and an
older fact changes no status, and of a customer's subscriptions the one Stripe created last
is the current one (``domain.subscriptions``), and one Stripe ended is never current again
(``_unless_ended``); news of the others is kept as their own status (``_note_other``), the
fallback when the current one ends; payments are kept by invoice id;
the user is found from the subscription, the Stripe customer linked when the user started
checkout, or the Checkout Session's ``client_reference_id``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from uuid import UUID

from application.billing import BILLING_ACTOR, Billing
from application.stripe_objects import (
    STATUSES,
    StripeEventEarlyError,
    StripeShapeError,
    UnknownPriceError,
    fields,
    invoice_period,
    invoice_price,
    invoice_subscription,
    minor_amount,
    part,
    subscription_period,
    subscription_price,
    text,
)
from domain.errors import ConcurrencyConflictError, NotFoundError
from domain.payments import StripeEventHandled, StripeLink, Wallet, stripe_event_key, wallet_id
from domain.plans import Plan, from_minor
from domain.recording import Cause, TradetapeAggregate
from domain.subscriptions import Period, Subscription, SubscriptionStatus
from domain.users import User

log = logging.getLogger("tradetape.billing")
HANDLED = ("checkout.session.completed", "customer.subscription.created",
           "customer.subscription.updated", "customer.subscription.deleted", "invoice.paid",
           "invoice.payment_failed", "payment_intent.succeeded",
           "payment_intent.payment_failed", "charge.refunded")


class _Change:
    """What one event changes: aggregates to save, and the subscription as it was."""

    def __init__(self, marker: StripeEventHandled, cause: Cause):
        self.cause = cause  # one for everything the event changes
        self.aggregates: list[TradetapeAggregate] = [marker]
        self.sub: Subscription | None = None
        self.before: tuple[SubscriptionStatus, list[str]] | None = None

    def add(self, *aggregates: TradetapeAggregate) -> None:
        for aggregate in aggregates:
            if all(a is not aggregate for a in self.aggregates):
                self.aggregates.append(aggregate)


class StripeWebhooks:
    def __init__(self, billing: Billing):
        self.billing, self.trading = billing, billing.trading

    def handle(self, event: dict[str, Any]) -> str:
        """``handled``, ``duplicate`` or ``ignored`` (a type not handled: acknowledged).
        An event not as Stripe sends them: StripeShapeError, nothing recorded."""
        event_id, kind, created = _envelope(event)
        for _ in range(3):
            if self._seen(event_id):
                return "duplicate"
            # Every event this one records is tied to it: its id is the correlation id.
            cause = self.trading.cause(BILLING_ACTOR, f"stripe:{event_id}")
            marker = StripeEventHandled.receive(cause, event_id, kind, created)
            change = _Change(marker, cause)
            if kind in HANDLED:
                obj = fields(part(event, "data").get("object"), f"{kind}'s data.object")
                getattr(self, "_" + kind.replace(".", "_"))(obj, event, change)
            try:
                with self.billing.slots.lock:
                    self.billing.commit(change.aggregates, change.sub, change.before,
                                        change.cause)
                return "handled" if kind in HANDLED else "ignored"
            except ConcurrencyConflictError:
                continue  # another delivery (or writer) first: decide again
        raise ConcurrencyConflictError("the event kept racing other writers; retry")

    def _seen(self, event_id: str) -> bool:
        try:
            self.trading.load(stripe_event_key(event_id), StripeEventHandled)
            return True
        except NotFoundError:
            return False

    # --- who ------------------------------------------------------------------------------

    def _user(self, *, subscription: str | None = None, customer: str | None = None,
              metadata: dict | None = None) -> str | None:
        user = (subscription and self.billing.linked("subscription", subscription)) or (
            self.billing.user_of_customer(customer))
        if user is None and isinstance(metadata, dict):
            user = self._known_user(metadata.get("tradetape_user"))
        return user

    def _known_user(self, user_id: Any) -> str | None:
        try:
            return str(self.trading.load(UUID(str(user_id)), User).id)
        except (ValueError, NotFoundError):
            return None

    def _link(self, change: _Change, kind: str, key: str | None, value: str) -> None:
        if key and self.billing.linked(kind, key) is None and not any(
                isinstance(a, StripeLink) and (a.kind, a.key) == (kind, key)
                for a in change.aggregates):
            change.add(StripeLink.make(change.cause, kind, key, value))

    def _subscription_of(self, user: str, change: _Change) -> Subscription | None:
        if change.sub is None:
            change.sub = self.billing.subscription(user)
            if change.sub is not None:
                change.before = (change.sub.status, list(change.sub.paused_bots))
        return change.sub

    # --- the events -----------------------------------------------------------------------

    def _checkout_session_completed(self, obj: dict, event: dict, change: _Change) -> None:
        user = self._known_user(obj.get("client_reference_id")) or self._user(
            customer=text(obj, "customer"))
        if user is None:
            log.warning("checkout session %s names no user of ours", obj.get("id"))
            return
        self._link(change, "customer", text(obj, "customer"), user)
        self._link(change, "customer-of", user, text(obj, "customer") or "")
        self._link(change, "subscription", text(obj, "subscription"), user)

    def _customer_subscription_created(self, obj: dict, event: dict, change: _Change
                                       ) -> None:
        user = self._user(subscription=obj.get("id"), customer=text(obj, "customer"),
                          metadata=obj.get("metadata"))
        status = STATUSES.get(str(obj.get("status")))
        if user is None or status is None:
            self._unattributed(user, obj, event)
            return
        stripe_sub = text(obj, "id")
        if stripe_sub is None:
            raise StripeShapeError(f"a {event['type']} without a subscription id")
        self._link(change, "subscription", stripe_sub, user)
        start, end = subscription_period(obj)
        self._apply(user, change, stripe_sub, status, start, end, subscription_price(obj),
                    bool(obj.get("cancel_at_period_end")), int(event.get("created") or 0),
                    _created(obj))

    _customer_subscription_updated = _customer_subscription_created
    _customer_subscription_deleted = _customer_subscription_created

    def _invoice_paid(self, obj: dict, event: dict, change: _Change) -> None:
        stripe_sub = invoice_subscription(obj)
        user = self._user(subscription=stripe_sub, customer=text(obj, "customer"))
        period = invoice_period(obj)
        if user is None or stripe_sub is None or period is None:
            self._unattributed(user, obj, event)
            return
        self._link(change, "subscription", stripe_sub, user)
        self._apply(user, change, stripe_sub, SubscriptionStatus.ACTIVE, *period,
                    invoice_price(obj), None, int(event.get("created") or 0))
        sub = change.sub
        currency = str(obj.get("currency") or "").upper()
        if self._paid_from_wallet(obj):
            log.info("invoice %s was paid from the wallet: no card payment", obj.get("id"))
        elif sub is not None and sub.pay_invoice(
                change.cause, str(obj.get("id")),
                from_minor(currency, minor_amount(obj, "amount_paid")), currency, "card"):
            change.add(sub)
        for paid_by in (text(obj, "charge"), text(obj, "payment_intent")):
            self._link(change, "invoice-payment", paid_by, user)

    def _paid_from_wallet(self, obj: dict) -> bool:
        """An invoice our wallet paid and Stripe was told of (marked paid outside Stripe):
        its ``invoice.paid`` is no card payment, the wallet's debit is the revenue."""
        return (self.billing.linked("wallet-paid", str(obj.get("id"))) is not None
                or obj.get("paid_out_of_band") is True)

    def _invoice_payment_failed(self, obj: dict, event: dict, change: _Change) -> None:
        """Past due. A failure of a user with no subscription recorded yet (the first
        one's ``customer.subscription.created`` still on its way) is refused
        (STRIPE_EVENT_EARLY): acknowledged, it would be lost, and the subscription would
        start active though its payment failed. A failure of another of the customer's
        subscriptions, known or never seen, leaves the current one as it is, but keeps
        that one past due among the others (the user falls back to it only within its
        grace); of a one-off invoice, it changes nothing."""
        stripe_sub = invoice_subscription(obj)
        user = self._user(subscription=stripe_sub, customer=text(obj, "customer"))
        sub = self._subscription_of(user, change) if user else None
        if sub is None and user is not None and stripe_sub is not None:
            raise StripeEventEarlyError(f"a failed payment of subscription {stripe_sub:.60}, "
                                        "not recorded yet: Stripe delivers it again")
        told_at = int(event.get("created") or 0)
        if sub is not None and stripe_sub in sub.others:  # another one: its own status
            sub.other_payment_failed(change.cause, stripe_sub, told_at,
                                     self.billing.settings.grace)
            change.add(sub)
            return
        period = invoice_period(obj)
        if sub is not None and stripe_sub not in (None, sub.stripe_subscription) and period:
            # One never seen (made in Stripe's dashboard, or its own events lost): the
            # customer is ours, so it is kept past due among the others as this invoice
            # tells it; its own events, if they come, order themselves after it.
            status = self._unless_ended(user, change, stripe_sub, SubscriptionStatus.PAST_DUE)
            self._link(change, "subscription", stripe_sub, user)
            unseen = Period(stripe_sub, status, *period, None, 0, False, told_at)
            self._note_other(sub, change, unseen, invoice_price(obj), True)
            return
        if sub is None or sub.stripe_subscription != stripe_sub:
            self._unattributed(user, obj, event)
            return
        sub.fail_payment(change.cause, told_at, self.billing.settings.grace)
        change.add(sub)

    def _payment_intent_succeeded(self, obj: dict, event: dict, change: _Change) -> None:
        metadata = part(obj, "metadata")
        if metadata.get("tradetape_purpose") != "top_up":
            return  # an invoice's payment: ``invoice.paid`` records it
        user = self._user(customer=text(obj, "customer"), metadata=metadata)
        if user is None:
            self._unattributed(user, obj, event)
            return
        currency = str(obj.get("currency") or "").upper()
        received = minor_amount(obj, "amount_received" if obj.get("amount_received")
                                else "amount")
        wallet = self._wallet(user, change)
        wallet.credit(change.cause, currency,
                      from_minor(currency, received), str(obj.get("id")), "top_up")
        change.add(wallet)
        self._link(change, "top-up", str(obj.get("id")), user)

    def _payment_intent_payment_failed(self, obj: dict, event: dict, change: _Change
                                       ) -> None:
        log.info("payment %s failed: %s", obj.get("id"),
                 part(obj, "last_payment_error").get("code"))

    def _charge_refunded(self, obj: dict, event: dict, change: _Change) -> None:
        """A refund of a top-up debits the wallet; of an invoice, it is the subscription's.
        A refund of a payment not seen yet is refused (STRIPE_EVENT_EARLY): Stripe delivers
        it again later, after the payment's own event."""
        charge, intent = str(obj.get("id")), text(obj, "payment_intent")
        top_up = intent and self.billing.linked("top-up", intent)
        invoice = self.billing.linked("invoice-payment", charge) or (
            intent and self.billing.linked("invoice-payment", intent))
        if not top_up and not invoice:
            raise StripeEventEarlyError(f"a refund of {charge:.60}, a payment not recorded "
                                        "yet: Stripe delivers it again")
        currency = str(obj.get("currency") or "").upper()
        refunded = from_minor(currency, minor_amount(obj, "amount_refunded"))
        cause = change.cause
        if top_up:
            wallet = self._wallet(top_up, change)
            if wallet.refund(cause, currency, charge, refunded):
                change.add(wallet)
            return
        sub = self._subscription_of(invoice, change)
        if sub is not None:
            sub.refund(cause, charge, refunded, currency)
            change.add(sub)

    # --- shared ---------------------------------------------------------------------------

    def _apply(self, user: str, change: _Change, stripe_sub: str,
               status: SubscriptionStatus, start, end, price: str | None,
               cancel_at_end: bool | None, told_at: int, created: int = 0) -> None:
        """``created``: the subscription object's own creation time (0 from an invoice,
        which does not tell it)."""
        sub = self._subscription_of(user, change)
        status = self._unless_ended(user, change, stripe_sub, status)
        if sub is not None and self._not_current(sub, stripe_sub, status, created):
            log.info("stripe subscription %s is %s; %s is the current one", stripe_sub,
                     status.value, sub.stripe_subscription)
            self._note_other(sub, change, Period(
                stripe_sub, status, start, end, sub.plan_id, sub.plan_version,
                bool(cancel_at_end), told_at, created), price, cancel_at_end is None)
            return
        if status is SubscriptionStatus.CANCELLED and sub is not None:
            sub.date(change.cause, stripe_sub, created)
            change.add(sub, *self.billing.end(sub, told_at, change.cause))
            return
        plan = self._plan_at(price, sub)
        cancel = sub.cancel_at_period_end if cancel_at_end is None and sub else bool(
            cancel_at_end)
        period = Period(stripe_sub, status, start, end, plan.id, plan.version, cancel,
                        told_at, created)
        cause, grace = change.cause, self.billing.settings.grace
        if sub is None:
            change.sub = Subscription.start(cause, user, period, grace)
        else:
            sub.observe(cause, period, grace)
        change.add(change.sub)

    def _note_other(self, sub: Subscription, change: _Change, period: Period,
                    price: str | None, cancel_untold: bool) -> None:
        """News of another of the customer's subscriptions, kept as its own status: should
        the current one end, the user falls back to the newest one still live. Its plan
        is the one selling its price, else the one it was known at (an object naming no
        price, or the price that plan's version sold). At a price no plan sells it is kept
        too, with no plan: it entitles nothing (no fallback to it) but the user sees it and
        the log tells the operator, and once a plan sells the price it entitles by that plan
        (``Billing.price_others``). Not the current one, so nothing is refused."""
        known = sub.others.get(period.stripe_subscription)
        plan_id, version, price = self._other_plan(known, price)
        if plan_id is None and period.status is not SubscriptionStatus.CANCELLED:
            log.warning("stripe subscription %s of user %s is at price %s, which no plan "
                        "sells: it entitles nothing until `tradetape plans update CODE "
                        "--stripe-price %s` names it", period.stripe_subscription,
                        sub.user_id, price, price)
        cancel = known["cancel_at_period_end"] if cancel_untold and known else (
            period.cancel_at_period_end)
        self.billing.price_others(sub, change.cause)
        sub.note_other(change.cause, replace(period, plan_id=plan_id, plan_version=version,
                                             cancel_at_period_end=cancel),
                       self.billing.settings.grace, price)
        change.add(sub)

    def _other_plan(self, known: dict | None, price: str | None
                    ) -> tuple[UUID | None, int, str | None]:
        """The plan (id, version) and Stripe price of another subscription: the plan
        selling ``price``, else the one it was known at when ``price`` is none or that
        plan's version sold it; else no plan (a price no plan sells)."""
        catalogue = self.billing.catalogue
        plan = catalogue.by_stripe_price(price)
        if plan is not None:
            return plan.id, plan.version, price
        if known is None:
            return None, 0, price
        if price is None:
            return known["plan_id"], known["plan_version"], known["stripe_price"]
        if known["plan_id"] is not None and catalogue.at_version(
                known["plan_id"], known["plan_version"]).stripe_price == price:
            return known["plan_id"], known["plan_version"], price
        return None, 0, price

    def _unless_ended(self, user: str, change: _Change, stripe_sub: str,
                      status: SubscriptionStatus) -> SubscriptionStatus:
        """``status``, or CANCELLED for a subscription Stripe has ended: an end is final at
        Stripe, so any news of it told before its end (its creation, an update, an invoice
        arriving late) must not make it the active one. Its end is remembered as a link
        (``ended``), since a subscription that is not the current one (a newer one whose
        end arrived before its creation) has no place in the user's ``Subscription``."""
        if status is SubscriptionStatus.CANCELLED:
            self._link(change, "ended", stripe_sub, user)
            return status
        ended = self.billing.linked("ended", stripe_sub) is not None
        return SubscriptionStatus.CANCELLED if ended else status

    @staticmethod
    def _not_current(sub: Subscription, stripe_sub: str, status: SubscriptionStatus,
                     created: int) -> bool:
        """News of another of the customer's subscriptions that leaves the current one as
        it is: one Stripe created before it (replaced by a new checkout), one ending (one
        that never completed ends too), an invoice (it does not say when its subscription
        was created: that subscription's own events decide whether it takes over), or one
        past due not known to be newer (a new subscription takes over once active, or
        past due once known to be newer)."""
        if stripe_sub == sub.stripe_subscription:
            return False
        return (created == 0 or sub.is_older(stripe_sub, created)
                or status is SubscriptionStatus.CANCELLED
                or (status is SubscriptionStatus.PAST_DUE
                    and not sub.is_newer(stripe_sub, created)))

    def _plan_at(self, price: str | None, sub: Subscription | None) -> Plan:
        """The plan a subscription at Stripe ``price`` buys: the plan selling it now, or the
        subscriber's own plan when the object names no price or the price is the one that
        plan sold when they bought it (an operator gave the plan a new Stripe price since).
        Any other price is STRIPE_PRICE_UNKNOWN, nothing recorded: a subscription moved to
        a price no plan sells does not keep its old plan silently; it keeps it, refused in
        the log and in Stripe's dashboard, until an operator names the price and Stripe's
        next delivery records the move."""
        catalogue = self.billing.catalogue
        plan = catalogue.by_stripe_price(price)
        if plan is None and sub is not None and (price is None or catalogue.at_version(
                sub.plan_id, sub.plan_version).stripe_price == price):
            plan = catalogue.by_id(sub.plan_id)
        if plan is None:
            raise UnknownPriceError(f"no plan sells Stripe price {price!s:.80}: set it "
                                    "with `tradetape plans update CODE --stripe-price`; "
                                    "Stripe delivers the event again")
        return plan

    def _wallet(self, user: str, change: _Change) -> Wallet:
        try:
            return self.trading.load(wallet_id(user), Wallet)
        except NotFoundError:
            return Wallet.open(change.cause, user)

    def _unattributed(self, user: str | None, obj: dict, event: dict) -> None:
        """Nothing of ours to change (another product's customer, a one-off invoice, an
        object still incomplete): acknowledged, one log line."""
        log.info("stripe event %s (%s) changes nothing here: %s %s", event.get("id"),
                 event.get("type"), obj.get("object"), obj.get("id"))


def _created(obj: dict) -> int:
    """When Stripe created the subscription ``obj`` (0: not said)."""
    created = obj.get("created")
    if created is None:
        return 0
    if isinstance(created, bool) or not isinstance(created, int) or created < 0:
        raise StripeShapeError(f"subscription {obj.get('id')!s:.60} has no creation time: "
                               f"{created!r:.60}")
    return created


def _envelope(event: object) -> tuple[str, str, int]:
    """The event's id, type and creation time (Stripe's seconds)."""
    event = fields(event, "the event")
    event_id, kind, created = event.get("id"), event.get("type"), event.get("created", 0)
    if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
        raise StripeShapeError("an event without an id or a type")
    if isinstance(created, bool) or not isinstance(created, int):
        raise StripeShapeError(f"event {event_id:.60} has no creation time")
    return event_id, kind, created

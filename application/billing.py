"""Subscriptions as a user meets them: checkout of a plan through Stripe, the customer
portal, cancelling at the period's end (and taking that back), and the daily sweep that
expires what is past its grace, pausing the bots beyond FREE's limits (they resume when
the user pays again, see ``application.stripe_webhooks``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.utils import get_topic

from application.billing_settings import BillingSettings
from application.entitlements import Entitlements
from application.plans import PlanCatalogue
from application.replay import read_log
from application.wallet_payments import (
    REFUSED,
    renew_from_wallet,
    renewed_from_wallet,
)
from domain.bots import Bot, BotMode, BotStatus
from domain.errors import ConcurrencyConflictError, DomainError, NotFoundError, TurnLostError
from domain.payments import PaymentGateway, StripeLink, link_key
from domain.plans import PlanTerms
from domain.recording import Cause, TradetapeAggregate
from domain.subscriptions import ENTITLED, Subscription, SubscriptionStatus

if TYPE_CHECKING:
    from application.trading import Trading

log = logging.getLogger("tradetape.billing")
EventVerifier = Callable[[bytes, str | None, str | None], dict]
BILLING_ACTOR = "system:billing"
# Deciding again after another writer won: each loss means a bot (or the subscription)
# changed meanwhile, so a few attempts are enough.
ATTEMPTS = 8


class BotSlots:
    """Pauses a user's running bots beyond a plan's limits and starts them again, under
    the paper runner's lock (``follow``: trade a started bot from now on)."""

    def __init__(self, trading: Trading, lock: AbstractContextManager | None = None,
                 follow: Callable[[UUID], None] | None = None):
        self.trading, self.follow = trading, follow
        self.lock = lock or nullcontext()

    def beyond(self, user_id: str, terms: PlanTerms, cause: Cause) -> list[Bot]:
        """The running bots past ``terms`` (the oldest kept), each paused (not saved)."""
        from application.user_views import bots_owned_by

        kept = live = 0
        paused = []
        for bot_id in bots_owned_by(self.trading, user_id):
            bot = self.trading.get_bot(bot_id)
            if bot.status is not BotStatus.RUNNING:
                continue
            is_live = bot.mode is BotMode.LIVE
            if kept < terms.max_bots and (not is_live or live < terms.max_live_bots):
                kept, live = kept + 1, live + is_live
                continue
            bot.pause(cause)  # its open deal keeps its take profit and stop loss
            paused.append(bot)
        return paused

    def restart(self, bot_ids: list[str], cause: Cause) -> list[Bot]:
        """The bots of ``bot_ids`` still paused, each started again (not saved)."""
        started = []
        for bot_id in bot_ids:
            try:
                bot = self.trading.get_bot(UUID(bot_id))
            except NotFoundError:
                continue
            if bot.status is BotStatus.PAUSED:
                bot.start(cause)
                started.append(bot)
        return started

    def followed(self, bots: list[Bot]) -> None:
        for bot in bots:
            if bot.status is BotStatus.RUNNING and self.follow is not None:
                self.follow(bot.id)


class Billing:
    def __init__(self, trading: Trading, settings: BillingSettings, *,
                 gateway: PaymentGateway | None = None, slots: BotSlots | None = None,
                 verify: EventVerifier | None = None):
        """``verify(payload, signature header, secret)``: a Stripe event's body once its
        signature holds (the adapter's ``verified_event``)."""
        self.trading, self.settings, self.gateway = trading, settings, gateway
        self.verify = verify
        self.catalogue = PlanCatalogue(trading, settings.price_pro)
        self.entitlements = Entitlements(trading, self.catalogue, enabled=settings.enabled)
        self.slots = slots or BotSlots(trading)
        self.daily_sweep = DailySweep(self)
        # user -> why Stripe refused, at the last sweep, to be told their wallet pays
        # (they expired as unpaid: WALLET_RENEWAL_REFUSED); /health shows them
        self.refused_renewals: dict[str, str] = {}
        # user -> why Stripe did not answer (an outage), at the last sweep: their wallet
        # holds the price, they wait (past due) for the sweep's next try; /health shows them
        self.waiting_renewals: dict[str, str] = {}

    def verified_event(self, payload: bytes, signature: str | None) -> dict:
        """The event Stripe signed; SIGNATURE_INVALID otherwise (or with no verifier)."""
        if self.verify is None:
            raise DomainError("this server checks no Stripe signatures",
                              code="SIGNATURE_INVALID")
        return self.verify(payload, signature, self.settings.webhook_secret)

    # --- links to Stripe ------------------------------------------------------------------

    def linked(self, kind: str, key: str) -> str | None:
        try:
            return self.trading.load(link_key(kind, key), StripeLink).value
        except NotFoundError:
            return None

    def user_of_customer(self, customer: str | None) -> str | None:
        return self.linked("customer", customer) if customer else None

    def customer_of(self, user_id: str, email: str | None) -> str:
        """The user's Stripe customer, created on first need and kept."""
        known = self.linked("customer-of", user_id)
        if known is not None:
            return known
        customer = self.payments().create_customer(user_id, email)
        cause = self.trading.cause(user_id)
        try:
            self.trading.save_all(StripeLink.make(cause, "customer-of", user_id, customer),
                                  StripeLink.make(cause, "customer", customer, user_id))
        except ConcurrencyConflictError:  # another request linked one first: that one
            return self.linked("customer-of", user_id) or customer
        return customer

    def payments(self) -> PaymentGateway:
        """The payment gateway, or BILLING_UNAVAILABLE on a server without one."""
        if self.gateway is None:
            raise DomainError("this server takes no payments (no TRADETAPE_STRIPE_API_KEY)",
                              code="BILLING_UNAVAILABLE")
        return self.gateway

    # --- what a user does -----------------------------------------------------------------

    def subscription(self, user_id: str, as_of: datetime | None = None
                     ) -> Subscription | None:
        return self.entitlements.subscription(user_id, as_of)

    def start_checkout(self, user_id: str, email: str | None, plan_code: str) -> str:
        plan = self.catalogue.find(plan_code)
        if plan is None:
            raise NotFoundError(f"no plan {plan_code}", field="planId")
        if not plan.terms.stripe_price:
            raise DomainError(f"plan {plan_code} has no Stripe price to sell",
                              code="PLAN_NOT_FOR_SALE", field="planId")
        sub = self.subscription(user_id)
        if sub is not None and sub.is_entitled() and sub.plan_id == plan.id:
            raise DomainError(f"you are subscribed to {plan_code} already",
                              code="ALREADY_SUBSCRIBED", field="planId")
        base = self.settings.public_url
        return self.payments().checkout_url(
            customer=self.customer_of(user_id, email), price=plan.terms.stripe_price,
            user_id=user_id, success_url=f"{base}/?checkout=done",
            cancel_url=f"{base}/?checkout=cancelled")

    def portal_url(self, user_id: str) -> str:
        customer = self.linked("customer-of", user_id)
        if customer is None:
            raise DomainError("you have no billing account yet", code="NO_SUBSCRIPTION")
        return self.payments().portal_url(customer, f"{self.settings.public_url}/")

    def cancel(self, user_id: str, actor: str, *, cancel: bool = True) -> Subscription:
        """Cancel at the period's end (``cancel``) or take that back: asked of Stripe,
        then recorded (Stripe's ``customer.subscription.updated`` says the same later)."""
        sub = self.subscription(user_id)
        if sub is None or not sub.is_entitled():
            raise DomainError("you have no subscription to change", code="NO_SUBSCRIPTION")
        if sub.cancel_at_period_end != cancel:
            self.payments().set_cancel_at_period_end(sub.stripe_subscription, cancel)
            sub.schedule_cancel(self.trading.cause(actor), cancel)
            self.trading.save_all(sub)
        return sub

    def refund(self, payment_intent: str, amount: object | None, currency: str | None,
               actor: str) -> str:
        """An administrator refunds a payment (all of it, or ``amount`` in ``currency``)
        through Stripe; Stripe's ``charge.refunded`` then records it. The refund's id."""
        from domain.plans import money_in, to_minor

        if not payment_intent.startswith("pi_") or len(payment_intent) > 255:
            raise DomainError("not a Stripe PaymentIntent id (pi_…)", code="INVALID_PAYMENT",
                              field="paymentIntentId")
        minor = None
        if amount is not None:
            currency = (currency or "").strip().upper()
            value = money_in(currency, amount)
            if value <= 0:
                raise DomainError("a refund is more than zero", code="INVALID_AMOUNT",
                                  field="amount")
            minor = to_minor(currency, value)
        refund = self.payments().refund(payment_intent, minor)
        log.info("refund %s of %s asked by %s", refund, payment_intent, actor)
        return refund

    # --- the sweep ------------------------------------------------------------------------

    def sweep(self, actor: str = BILLING_ACTOR,
              confirm: Callable[[], None] | None = None) -> list[str]:
        """Expire every subscription past its grace (as of the injected clock), pausing
        the bots beyond FREE's limits in the same transaction; the users expired.
        ``confirm``: called before each subscription's step (it may write, and ask Stripe),
        raises when this process may no longer sweep (its turn in the deployment lost:
        ``PostgresTaskLock.confirm``); the steps before it stay done."""
        expired = []
        self.refused_renewals.clear()  # this sweep's say
        self.waiting_renewals.clear()
        for sub_id in self._subscription_ids():
            if confirm is not None:
                confirm()
            for _ in range(ATTEMPTS):
                try:
                    outcome = self._sweep_one(sub_id, actor)
                    break
                except ConcurrencyConflictError:
                    continue  # a bot (or a webhook) changed meanwhile: decide again
            else:
                raise ConcurrencyConflictError("bots kept changing during the sweep; "
                                               "run it again")
            if outcome is not None:
                expired.append(outcome)
        return expired

    def _sweep_one(self, sub_id: UUID, actor: str, wallet_pays: bool = True) -> str | None:
        """The user whose subscription this expired, or None. ``wallet_pays=False``: Stripe
        refused to be told that the wallet pays, so its grace ends as any unpaid one's."""
        with self.slots.lock:
            sub = self.trading.load(sub_id, Subscription)
            cause = self.trading.cause(actor)
            if not sub.is_due_to_expire(cause.at):
                self._fall_back_priced(sub, cause)
                return None
            self.price_others(sub, cause)
            if sub.fall_back(cause):  # another subscription still live: no expiry
                self.trading.save_all(sub)
                log.info("subscription of %s fell back to %s", sub.user_id,
                         sub.stripe_subscription)
                return None
            grace_ended = sub.grace_ends_at  # (the renewal below clears it)
            wallet = renew_from_wallet(self, sub, actor) if wallet_pays else None
            if wallet is None:
                paused = self.slots.beyond(sub.user_id, self.entitlements.free(), cause)
                sub.expire(cause, [str(b.id) for b in paused])
                self.trading.save_all(sub, *paused)
        if wallet is not None:  # the prepaid wallet pays: Stripe told outside the lock
            outcome = renewed_from_wallet(self, sub, wallet, actor, grace_ended)
            if outcome == REFUSED:
                return self._sweep_one(sub_id, actor, wallet_pays=False)
            return None  # RENEWED, or WAITING for Stripe: asked again at the next try

        log.info("subscription of %s expired; %d bots paused", sub.user_id, len(paused))
        return sub.user_id

    def price_others(self, sub: Subscription, cause: Cause) -> bool:
        """The user's other subscriptions kept at a Stripe price no plan sold when told,
        now sold by a plan (an operator named the price since), entitle by that plan from
        now on (not saved); True when one did."""
        priced = False
        for stripe_sub, price in sub.unpriced_others().items():
            plan = self.catalogue.by_stripe_price(price)
            if plan is not None:
                sub.price_other(cause, stripe_sub, plan.id, plan.version)
                priced = True
        return priced

    def _fall_back_priced(self, sub: Subscription, cause: Cause) -> None:
        """A user left cancelled or expired beside another subscription still live at a
        price a plan sells only now: falls back to it, the bots paused at the end started
        again (saved)."""
        if sub.is_entitled() or not sub.unpriced_others():
            return
        before = (sub.status, list(sub.paused_bots))
        if self.price_others(sub, cause):
            if sub.fall_back(cause):
                log.info("subscription of %s fell back to %s, now priced", sub.user_id,
                         sub.stripe_subscription)
            self.commit([sub], sub, before, cause)

    def unpriced(self) -> list[tuple[str, str, str, str]]:
        """Every user's other subscriptions still live at a Stripe price no plan sells
        (they entitle nothing): (user id, Stripe subscription, price, status), for the
        operator."""
        found = []
        for sub_id in self._subscription_ids():
            sub = self.trading.load(sub_id, Subscription)
            for stripe_sub, price in sub.unpriced_others().items():
                live = sub.others[stripe_sub]["status"] in ENTITLED
                if live and self.catalogue.by_stripe_price(price) is None:
                    found.append((sub.user_id, stripe_sub, price,
                                  sub.others[stripe_sub]["status"].value))
        return found

    def _subscription_ids(self) -> list[UUID]:
        found = read_log(self.trading, [get_topic(Subscription.Started)])
        return list(dict.fromkeys(n.originator_id for n in found))

    def end(self, sub: Subscription, told_at: int, cause: Cause) -> list[Bot]:
        """Stripe ended the subscription: cancelled, the bots beyond FREE paused (not
        saved: returned, to be saved with it). A user with another subscription still live
        (``Subscription.live_other``) falls back to it instead, nothing paused."""
        if told_at < sub.told_at or sub.status in (SubscriptionStatus.CANCELLED,
                                                   SubscriptionStatus.EXPIRED):
            return []
        self.price_others(sub, cause)
        if sub.live_other(cause.at) is not None:  # still paying: nothing to pause
            sub.cancel(cause, told_at, [])
            sub.fall_back(cause)
            return []
        paused = self.slots.beyond(sub.user_id, self.entitlements.free(), cause)
        sub.cancel(cause, told_at, [str(b.id) for b in paused])
        return paused

    def commit(self, aggregates: list[TradetapeAggregate], sub: Subscription | None,
               before: tuple[SubscriptionStatus, list[str]] | None,
               cause: Cause | None = None) -> None:
        """Save what one Stripe event changed in one transaction; when it paid for a
        subscription that had expired or ended, the bots paused then start again."""
        bots = []
        if sub is not None and before is not None and sub.is_entitled() and before[0] in (
                SubscriptionStatus.EXPIRED, SubscriptionStatus.CANCELLED):
            bots = self.slots.restart(before[1], cause or self.trading.cause(BILLING_ACTOR))
        self.trading.save_all(*aggregates, *bots)
        self.slots.followed(bots)


class DailySweep:
    """The server's sweep: at start, then once a day (by the injected clock's time). While
    users wait for Stripe to answer (an outage: ``Billing.waiting_renewals``), it runs again
    sooner, with backoff: ``RETRY_FIRST``, doubled each try up to ``RETRY_MOST``."""

    RETRY_FIRST, RETRY_MOST = timedelta(minutes=1), timedelta(hours=1)

    def __init__(self, billing: Billing, every: timedelta = timedelta(days=1)):
        self.billing, self.every = billing, every
        self._next: datetime | None = None
        self._retry = self.RETRY_FIRST
        # what each subscription's step is preceded by (PostgreSQL: the sweep's turn
        # confirmed, ``application/bootstrap_schedules._beside_the_loop``); None: nothing
        self.confirm: Callable[[], None] | None = None

    def due(self, now: datetime) -> bool:
        return self._next is None or now >= self._next

    def run_if_due(self, now: datetime) -> int:
        """The sweep when due; one that raises is tried again tomorrow (its schedule logs
        the error and ``/health`` shows it meanwhile: ``CheckpointSchedule``)."""
        if not self.due(now):
            return 0
        self._next = now + self.every
        try:
            expired = len(self.billing.sweep(confirm=self.confirm))
        except TurnLostError:  # another process sweeps now; should this one take the
            self._next = None  # turn again, its sweep is due at once (not tomorrow)
            raise
        if self.billing.waiting_renewals:  # Stripe away: ask again soon, then less often
            self._next = min(self._next, now + self._retry)
            self._retry = min(self._retry * 2, self.RETRY_MOST)
        else:
            self._retry = self.RETRY_FIRST
        return expired

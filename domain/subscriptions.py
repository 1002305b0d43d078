"""The Subscription aggregate: one user's paid plan and where it stands.

``trialing → active → past_due → (grace) → expired``, or ``cancelled`` (at the period's
end). Stripe tells what happened (a payment, a failure, a cancellation); each fact carries
the time Stripe recorded it, and a fact older than the newest one applied changes no status
(Stripe delivers out of order). A customer may hold several Stripe subscriptions (an old one
replaced by a new checkout): the current one is the one Stripe *created* last, whatever
order their events arrive in, so a late fact of an older one changes nothing and the
first fact of a newer one takes over, whatever the older one's last event said. Each of the
others keeps its own status as Stripe tells it (``others``), so that when the current one
ends (or expires) the user falls back to the newest of them still live. Payments
are kept by invoice id, so one invoice is paid once however often it is told. Expiry is
decided by the injected clock (``expire_if_due``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import InvalidTransitionError
from domain.recording import Cause, TradetapeAggregate, ValueEnum


class SubscriptionStatus(ValueEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# Statuses whose plan's limits apply; otherwise the FREE plan's do.
ENTITLED = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAST_DUE)
PAYING = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE)


def subscription_id(user_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:subscription:{user_id}")


@dataclass(frozen=True)
class Period:
    """What Stripe says a subscription (or an invoice of it) covers, and as of when."""

    stripe_subscription: str
    status: SubscriptionStatus
    start: datetime
    end: datetime
    plan_id: UUID | None  # None: another subscription at a price no plan sells
    plan_version: int
    cancel_at_period_end: bool
    told_at: int  # the Stripe event's `created` (unix seconds)
    # The Stripe subscription object's own `created` (unix seconds): which of a customer's
    # subscriptions is the newest. 0: not told (an invoice names only the subscription's id).
    created: int = 0


class Subscription(TradetapeAggregate):
    user_id: str
    plan_id: UUID
    plan_version: int
    status: SubscriptionStatus
    stripe_subscription: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    grace_ends_at: datetime | None
    told_at: int
    stripe_created: int  # when Stripe created ``stripe_subscription``; 0: not known yet
    paid_invoices: dict[str, str]  # invoice id -> "card" | "wallet"
    paused_bots: list[str]  # paused at expiry, resumed on payment
    refunds: dict[str, Decimal]  # charge -> refunded of it
    # The customer's other Stripe subscriptions as last told: id -> the fields of
    # ``OtherTold`` (status, plan, period, told_at, created, grace_ends_at).
    others: dict[str, dict]

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Started(TradetapeAggregate.Created, Event):
        user_id: str
        stripe_subscription: str
        status: SubscriptionStatus
        plan_id: UUID
        plan_version: int
        period_start: datetime
        period_end: datetime
        cancel_at_period_end: bool
        told_at: int

        def apply(self, s: Subscription) -> None:
            s.user_id, s.paid_invoices, s.paused_bots = self.user_id, {}, []
            s.refunds, s.others = {}, {}
            s.grace_ends_at, s.stripe_created = None, 0
            _take_period(s, self)

    class Renewed(Event):
        """A (new) period paid for or begun: the plan's current version from now on."""

        stripe_subscription: str
        status: SubscriptionStatus
        plan_id: UUID
        plan_version: int
        period_start: datetime
        period_end: datetime
        cancel_at_period_end: bool
        told_at: int

        def apply(self, s: Subscription) -> None:
            if self.stripe_subscription != s.stripe_subscription:
                # Another subscription takes over: the one replaced keeps its own status
                # among the others (the user may fall back to it), and its ``Dated``
                # follows.
                others = {k: v for k, v in s.others.items() if k != self.stripe_subscription}
                s.others = {**others, s.stripe_subscription: _standing(s)}
                s.stripe_created = 0
            _take_period(s, self)
            s.grace_ends_at, s.paused_bots = None, []

    class Dated(Event):
        """When Stripe created the current subscription (learned from its own object: an
        invoice does not tell it, nor did subscriptions recorded before this event)."""

        stripe_subscription: str
        created: int

        def apply(self, s: Subscription) -> None:
            if self.stripe_subscription == s.stripe_subscription:
                s.stripe_created = self.created

    class OtherTold(Event):
        """What Stripe said of another of the customer's subscriptions, not the current
        one: it changes no status here, but is where the user falls back to. Its own
        class since version 2 (it subclassed ``Renewed`` before, so anything matching
        ``Renewed`` matched it too); its topic is unchanged, so stored ones load as before.
        ``plan_id`` None: at a Stripe price (``stripe_price``) no plan sold when told, it
        entitles nothing until a plan sells that price (``price_other``)."""

        class_version = 2
        stripe_subscription: str
        status: SubscriptionStatus
        plan_id: UUID | None
        plan_version: int
        period_start: datetime
        period_end: datetime
        cancel_at_period_end: bool
        told_at: int
        created: int  # 0: not told
        grace_ends_at: datetime | None  # past due: until when it still entitles
        stripe_price: str | None  # None: not told (version 1 kept only sold prices)

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["stripe_price"] = None

        def apply(self, s: Subscription) -> None:
            standing = {k: getattr(self, k) for k in STANDING}
            s.others = {**s.others, self.stripe_subscription: standing}

    class PaymentFailed(Event):
        grace_ends_at: datetime
        told_at: int

        def apply(self, s: Subscription) -> None:
            s.status, s.grace_ends_at = SubscriptionStatus.PAST_DUE, self.grace_ends_at
            s.told_at = max(s.told_at, self.told_at)

    class CancelScheduled(Event):
        cancel_at_period_end: bool
        told_at: int

        def apply(self, s: Subscription) -> None:
            s.cancel_at_period_end = self.cancel_at_period_end
            s.told_at = max(s.told_at, self.told_at)

    class Cancelled(Event):
        told_at: int
        paused_bots: list[str]

        def apply(self, s: Subscription) -> None:
            s.status, s.grace_ends_at = SubscriptionStatus.CANCELLED, None
            s.told_at, s.paused_bots = max(s.told_at, self.told_at), list(self.paused_bots)

    class Expired(Event):
        paused_bots: list[str]

        def apply(self, s: Subscription) -> None:
            s.status, s.paused_bots = SubscriptionStatus.EXPIRED, list(self.paused_bots)

    class InvoicePaid(Event):
        invoice: str
        amount: Decimal
        currency: str
        method: str  # "card" (through Stripe) or "wallet"

        def apply(self, s: Subscription) -> None:
            s.paid_invoices = {**s.paid_invoices, self.invoice: self.method}

    class Refunded(Event):
        reference: str  # the Stripe charge refunded
        amount: Decimal
        currency: str

        def apply(self, s: Subscription) -> None:
            done = s.refunds.get(self.reference, Decimal(0))
            s.refunds = {**s.refunds, self.reference: done + self.amount}

    # --- commands -------------------------------------------------------------------------

    @classmethod
    def start(cls, cause: Cause, user_id: str, period: Period,
              grace: timedelta | None = None) -> Subscription:
        """Begun as ``period`` says; past due (first told so), with ``grace`` from now."""
        sub = cls._start(cls.Started, subscription_id(user_id), cause, user_id=user_id,
                         **_period_data(period))
        sub.date(cause, period.stripe_subscription, period.created)
        if period.status is SubscriptionStatus.PAST_DUE and grace is not None:
            sub._record(sub.PaymentFailed, cause, grace_ends_at=cause.at + grace,
                        told_at=period.told_at)
        return sub

    def is_older(self, stripe_subscription: str, created: int) -> bool:
        """Stripe created ``stripe_subscription`` (at ``created``) before the current one:
        news of a subscription replaced since, which changes nothing here. Unknown (a time
        not told, or the same second): False, and the time each fact was told decides."""
        return (stripe_subscription != self.stripe_subscription
                and 0 < created < self.stripe_created)

    def is_newer(self, stripe_subscription: str, created: int) -> bool:
        """Stripe created ``stripe_subscription`` (at ``created``) after the current one.
        A current one whose creation time is not known (recorded before ``Dated``
        existed, or started from an invoice) counts as older than any dated one, so news
        of another subscription is never left waiting on it. Should it be the newer after
        all, its own next subscription event dates it and makes it current again (its
        creation event, always sent; at the latest the update Stripe sends at renewal)."""
        return (stripe_subscription != self.stripe_subscription
                and 0 <= self.stripe_created < created)

    def observe(self, cause: Cause, period: Period, grace: timedelta) -> None:
        """What Stripe now says of the subscription; nothing when it is older news than
        what was applied, or changes nothing. A subscription created after the current
        one takes over whatever the current one's last news was (its cancellation may
        arrive before the new one's creation); one created before changes nothing."""
        which = (period.stripe_subscription, period.created)
        if self.is_older(*which):
            self.note_other(cause, period, grace)
            return
        if self.is_newer(*which) and period.status is not SubscriptionStatus.CANCELLED:
            self._take_over(cause, period, grace)
            return
        if period.told_at >= self.told_at:  # else older news of it: changes no status
            self._follow(cause, period, grace)
        self.date(cause, *which)

    def _follow(self, cause: Cause, period: Period, grace: timedelta) -> None:
        status = period.status
        if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
            if (status, period.end, period.stripe_subscription, period.plan_id) != (
                    self.status, self.current_period_end, self.stripe_subscription,
                    self.plan_id):
                self._record(self.Renewed, cause, **_period_data(period))
                return
        elif status is SubscriptionStatus.PAST_DUE:
            self.fail_payment(cause, period.told_at, grace)
        elif status is SubscriptionStatus.CANCELLED:
            return  # ended: the application decides which bots pause (``cancel``)
        if period.cancel_at_period_end != self.cancel_at_period_end:
            self._record(self.CancelScheduled, cause,
                         cancel_at_period_end=period.cancel_at_period_end,
                         told_at=period.told_at)

    def _take_over(self, cause: Cause, period: Period, grace: timedelta) -> None:
        """A newer Stripe subscription is the current one from now on, as it stands: its
        own facts are ordered among themselves (its ``told_at`` starts afresh). Later news
        of it kept among the others (a failed payment told before its creation arrived)
        is how it stands."""
        known = self.others.get(period.stripe_subscription)
        if (known is not None and known["told_at"] > period.told_at
                and known["plan_id"] is not None):
            self._become(cause, period.stripe_subscription, period.created)
            return
        self._record(self.Renewed, cause, **_period_data(period))
        self.date(cause, period.stripe_subscription, period.created)  # (reset by Renewed)
        if period.status is SubscriptionStatus.PAST_DUE:
            self._record(self.PaymentFailed, cause, grace_ends_at=cause.at + grace,
                         told_at=period.told_at)

    def note_other(self, cause: Cause, period: Period, grace: timedelta,
                   price: str | None = None) -> None:
        """What Stripe says of another of the customer's subscriptions (at Stripe
        ``price``), kept as its own status (its facts ordered among themselves by
        ``told_at``; an end is final). A current subscription ended or expired falls back
        to it at once if it is live and a plan sells its price."""
        known = self.others.get(period.stripe_subscription)
        ending = period.status is SubscriptionStatus.CANCELLED  # final, whenever told
        if known is not None and (known["status"] is SubscriptionStatus.CANCELLED or (
                not ending and period.told_at < known["told_at"])):
            return
        grace_ends_at = None
        if period.status is SubscriptionStatus.PAST_DUE:
            grace_ends_at = (known["grace_ends_at"] if known and known["grace_ends_at"]
                             else cause.at + grace)
        standing = {**_period_data(period), "created": max(
            period.created, known["created"] if known else 0), "grace_ends_at": grace_ends_at,
            "stripe_price": known["stripe_price"] if price is None and known else price}
        del standing["stripe_subscription"]
        if known != standing:
            self._record(self.OtherTold, cause, stripe_subscription=period.stripe_subscription,
                         **standing)
        if not self.is_entitled():
            self.fall_back(cause)

    def other_payment_failed(self, cause: Cause, stripe_subscription: str, told_at: int,
                             grace: timedelta) -> None:
        """A failed payment of another (known) subscription: past due, with ``grace``
        from now, unless older news than what is known of it."""
        known = self.others.get(stripe_subscription)
        if known is None or known["status"] not in PAYING or told_at <= known["told_at"]:
            return
        self._record(self.OtherTold, cause, stripe_subscription=stripe_subscription,
                     **{**known, "status": SubscriptionStatus.PAST_DUE, "told_at": told_at,
                        "grace_ends_at": cause.at + grace})

    def live_other(self, now: datetime) -> str | None:
        """The newest other subscription that still entitles (active, trialing, past due
        within its grace), by Stripe's creation time (an undated one counts as older)."""
        live = [(known["created"], known["told_at"], sub)
                for sub, known in self.others.items()
                if known["plan_id"] is not None and (known["status"] in PAYING or (
                    known["status"] is SubscriptionStatus.PAST_DUE
                    and known["grace_ends_at"] is not None
                    and now < known["grace_ends_at"]))]
        return max(live)[2] if live else None

    def fall_back(self, cause: Cause) -> bool:
        """The newest live other subscription becomes the current one, as last told (past
        due keeps its own grace); False when there is none."""
        sub = self.live_other(cause.at)
        if sub is None:
            return False
        self._become(cause, sub, self.others[sub]["created"])
        return True

    def _become(self, cause: Cause, sub: str, created: int) -> None:
        """Another subscription is the current one, as last told of it (``others``)."""
        known = self.others[sub]
        self._record(self.Renewed, cause, stripe_subscription=sub,
                     **{k: known[k] for k in STANDING if k not in UNCURRENT})
        self.date(cause, sub, created)
        if known["status"] is SubscriptionStatus.PAST_DUE:
            self._record(self.PaymentFailed, cause, grace_ends_at=known["grace_ends_at"],
                         told_at=known["told_at"])

    def unpriced_others(self) -> dict[str, str]:
        """The other subscriptions at a Stripe price no plan sold when told: id -> price."""
        return {sub: known["stripe_price"] for sub, known in self.others.items()
                if known["plan_id"] is None and known["stripe_price"]}

    def price_other(self, cause: Cause, stripe_subscription: str, plan_id: UUID,
                    plan_version: int) -> None:
        """A plan now sells the price of another subscription kept unpriced: it entitles
        by that plan from now on (as last told of it otherwise)."""
        known = self.others.get(stripe_subscription)
        if known is None or known["plan_id"] is not None:
            return
        self._record(self.OtherTold, cause, stripe_subscription=stripe_subscription,
                     **{**known, "plan_id": plan_id, "plan_version": plan_version})

    def date(self, cause: Cause, stripe_subscription: str, created: int) -> None:
        """Learn when Stripe created the current subscription, once told (by any of its
        objects, even older news: a newer subscription is known as newer only then)."""
        if (created and stripe_subscription == self.stripe_subscription
                and created != self.stripe_created):
            self._record(self.Dated, cause, stripe_subscription=stripe_subscription,
                         created=created)

    def renew(self, cause: Cause, period: Period) -> None:
        """A next period paid here (from the wallet), not told by Stripe."""
        self._record(self.Renewed, cause, **_period_data(period))

    def schedule_cancel(self, cause: Cause, cancel: bool) -> None:
        """Cancel at the period's end (or take that back), asked here; nothing when it
        already stands so."""
        if cancel != self.cancel_at_period_end:
            self._record(self.CancelScheduled, cause, cancel_at_period_end=cancel,
                         told_at=self.told_at)

    def fail_payment(self, cause: Cause, told_at: int, grace: timedelta) -> None:
        """Past due, with ``grace`` from now before it expires (once: a second failure
        does not extend the grace). Told in the same second as a payment, the payment
        wins, whichever came first (a retry that succeeded)."""
        if told_at <= self.told_at or self.status not in (SubscriptionStatus.ACTIVE,
                                                         SubscriptionStatus.TRIALING):
            return
        self._record(self.PaymentFailed, cause, grace_ends_at=cause.at + grace,
                     told_at=told_at)

    def cancel(self, cause: Cause, told_at: int, paused_bots: list[str]) -> None:
        if self.status in (SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED):
            return
        self._record(self.Cancelled, cause, told_at=told_at, paused_bots=paused_bots)

    def pay_invoice(self, cause: Cause, invoice: str, amount: Decimal, currency: str,
                    method: str) -> bool:
        """Record a payment once; False when this invoice was already paid."""
        if invoice in self.paid_invoices:
            return False
        self._record(self.InvoicePaid, cause, invoice=invoice, amount=amount,
                     currency=currency, method=method)
        return True

    def refund(self, cause: Cause, reference: str, amount: Decimal, currency: str) -> None:
        """What was refunded of a charge, recorded as the total so far: told twice (or
        in parts), the difference only."""
        done = self.refunds.get(reference, Decimal(0))
        if amount > done:
            self._record(self.Refunded, cause, reference=reference, amount=amount - done,
                         currency=currency)

    def is_due_to_expire(self, now: datetime) -> bool:
        return (self.status is SubscriptionStatus.PAST_DUE and self.grace_ends_at is not None
                and now >= self.grace_ends_at)

    def expire(self, cause: Cause, paused_bots: list[str]) -> None:
        if not self.is_due_to_expire(cause.at):
            raise InvalidTransitionError(f"the subscription is {self.status}",
                                         code="SUBSCRIPTION_NOT_DUE")
        self._record(self.Expired, cause, paused_bots=paused_bots)

    def is_entitled(self) -> bool:
        return self.status in ENTITLED


def _period_data(period: Period) -> dict:
    return {"stripe_subscription": period.stripe_subscription, "status": period.status,
            "plan_id": period.plan_id, "plan_version": period.plan_version,
            "period_start": period.start, "period_end": period.end,
            "cancel_at_period_end": period.cancel_at_period_end, "told_at": period.told_at}


# What is kept of each other subscription (``OtherTold``'s fields but its id).
STANDING = ("status", "plan_id", "plan_version", "period_start", "period_end",
            "cancel_at_period_end", "told_at", "created", "grace_ends_at", "stripe_price")
UNCURRENT = ("created", "grace_ends_at", "stripe_price")  # not ``Renewed``'s


def _standing(s: Subscription) -> dict:
    """The current subscription as it stands, kept among the others once replaced."""
    return {"status": s.status, "plan_id": s.plan_id, "plan_version": s.plan_version,
            "period_start": s.current_period_start, "period_end": s.current_period_end,
            "cancel_at_period_end": s.cancel_at_period_end, "told_at": s.told_at,
            "created": s.stripe_created, "grace_ends_at": s.grace_ends_at,
            "stripe_price": None}


def _take_period(s: Subscription, e) -> None:
    s.stripe_subscription, s.status = e.stripe_subscription, e.status
    s.plan_id, s.plan_version = e.plan_id, e.plan_version
    s.current_period_start, s.current_period_end = e.period_start, e.period_end
    s.cancel_at_period_end, s.told_at = e.cancel_at_period_end, e.told_at

"""What billing records besides plans and subscriptions: each Stripe event handled (once),
the links between our users and Stripe's customers and subscriptions, and a user's prepaid
``Wallet``."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError
from domain.recording import Cause, TradetapeAggregate


def stripe_event_key(event_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:stripe-event:{event_id}")


def link_key(kind: str, key: str) -> UUID:
    """``kind``: "customer" (a Stripe customer -> our user), "customer-of" (our user -> their
    Stripe customer), "subscription" (a Stripe subscription -> our user), "payment" (a
    PaymentIntent or charge -> our user)."""
    return uuid5(NAMESPACE_URL, f"tradetape:stripe-link:{kind}:{key}")


def wallet_id(user_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tradetape:wallet:{user_id}")


class StripeEventHandled(TradetapeAggregate):
    """Saved in the same transaction as what the event changed: a second delivery finds it
    and changes nothing; two deliveries at once cannot both be saved."""

    stripe_event: str
    type: str

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Received(TradetapeAggregate.Created, Event):
        stripe_event: str
        type: str
        created: int

        def apply(self, marker: StripeEventHandled) -> None:
            marker.stripe_event, marker.type = self.stripe_event, self.type

    @classmethod
    def receive(cls, cause: Cause, stripe_event: str, type: str, created: int
                ) -> StripeEventHandled:
        return cls._start(cls.Received, stripe_event_key(stripe_event), cause,
                          stripe_event=stripe_event, type=type, created=created)


class StripeLink(TradetapeAggregate):
    """One fact that never changes: this Stripe id belongs to that value (a user id, or the
    user's customer id)."""

    kind: str
    key: str
    value: str

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Linked(TradetapeAggregate.Created, Event):
        kind: str
        key: str
        value: str

        def apply(self, link: StripeLink) -> None:
            link.kind, link.key, link.value = self.kind, self.key, self.value

    @classmethod
    def make(cls, cause: Cause, kind: str, key: str, value: str) -> StripeLink:
        return cls._start(cls.Linked, link_key(kind, key), cause, kind=kind, key=key,
                          value=value)


class Wallet(TradetapeAggregate):
    """A user's prepaid balance per currency: top-ups credit it, renewals paid from it and
    refunds debit it. Each movement names its reference (a PaymentIntent, an invoice, a
    refund) and is recorded once."""

    user_id: str
    balances: dict[str, Decimal]
    references: set[str]
    refunded: dict[str, Decimal]  # "refund:<charge>" -> refunded of it so far

    def __init__(self) -> None:
        super().__init__()

    class Event(TradetapeAggregate.Event):
        """Declared here, so the library need not redefine each event below."""

    class Opened(TradetapeAggregate.Created, Event):
        user_id: str

        def apply(self, wallet: Wallet) -> None:
            wallet.user_id, wallet.balances, wallet.references = self.user_id, {}, set()
            wallet.refunded = {}

    class Credited(Event):
        currency: str
        amount: Decimal
        reference: str
        reason: str  # "top_up"

        def apply(self, wallet: Wallet) -> None:
            before = wallet.balances.get(self.currency, Decimal(0))
            wallet.balances = {**wallet.balances, self.currency: before + self.amount}
            wallet.references = wallet.references | {self.reference}

    class Debited(Event):
        currency: str
        amount: Decimal
        reference: str
        reason: str  # "renewal" | "refund"

        def apply(self, wallet: Wallet) -> None:
            before = wallet.balances.get(self.currency, Decimal(0))
            wallet.balances = {**wallet.balances, self.currency: before - self.amount}
            wallet.references = wallet.references | {self.reference}
            if self.reason == "refund":
                done = wallet.refunded.get(self.reference, Decimal(0))
                wallet.refunded = {**wallet.refunded, self.reference: done + self.amount}

    @classmethod
    def open(cls, cause: Cause, user_id: str) -> Wallet:
        return cls._start(cls.Opened, wallet_id(user_id), cause, user_id=user_id)

    def balance(self, currency: str) -> Decimal:
        return self.balances.get(currency, Decimal(0))

    def credit(self, cause: Cause, currency: str, amount: Decimal, reference: str,
               reason: str = "top_up") -> bool:
        if reference in self.references:
            return False
        self._record(self.Credited, cause, currency=currency, amount=amount,
                     reference=reference, reason=reason)
        return True

    def refund(self, cause: Cause, currency: str, charge: str, total: Decimal) -> bool:
        """Stripe refunded ``total`` of a top-up's charge so far: the part not yet taken
        back is debited, even if it was spent (the balance goes below zero: owed)."""
        reference = f"refund:{charge}"
        amount = total - self.refunded.get(reference, Decimal(0))
        if amount <= 0:
            return False
        self._record(self.Debited, cause, currency=currency, amount=amount,
                     reference=reference, reason="refund")
        return True

    def debit(self, cause: Cause, currency: str, amount: Decimal, reference: str,
              reason: str) -> bool:
        """A payment from the wallet, once per reference; INSUFFICIENT_WALLET_FUNDS when
        the balance is short."""
        if reference in self.references:
            return False
        if self.balance(currency) < amount:
            raise DomainError(f"the wallet holds {self.balance(currency)} {currency}, "
                              f"{amount} {currency} needed", code="INSUFFICIENT_WALLET_FUNDS")
        self._record(self.Debited, cause, currency=currency, amount=amount,
                     reference=reference, reason=reason)
        return True


class PaymentProviderUnavailable(DomainError):
    """The provider did not answer (no connection, a 5xx, throttled with 429): nothing was
    decided there, the same request may be asked again later. Its code is the provider's
    error code as for a refusal (``STRIPE_ERROR``); a refusal (a 4xx answer) is a plain
    DomainError."""

    code = "STRIPE_ERROR"


class PaymentGateway(Protocol):
    """The payment provider (Stripe) as billing needs it. Amounts in minor units."""

    def create_customer(self, user_id: str, email: str | None) -> str: ...

    def checkout_url(self, *, customer: str, price: str, user_id: str, success_url: str,
                     cancel_url: str) -> str: ...

    def portal_url(self, customer: str, return_url: str) -> str: ...

    def set_cancel_at_period_end(self, subscription: str, cancel: bool) -> None: ...

    def refund(self, payment_intent: str, amount_minor: int | None) -> str: ...

    def settle_open_invoices(self, subscription: str) -> list[str]:
        """Every open invoice of ``subscription`` marked paid outside the provider (our
        wallet paid it): no charge for it, no more retries. Their ids."""
        ...

    def create_payment_intent(self, *, customer: str, amount_minor: int, currency: str,
                              method: str, user_id: str, email: str | None = None
                              ) -> dict: ...

"""A user's billing history: invoices paid, refunds, top-ups and wallet payments, newest
first, read from their subscription's and wallet's events (as of a time, when asked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.payments import Wallet, wallet_id
from domain.subscriptions import Subscription, subscription_id

if TYPE_CHECKING:
    from application.trading import Trading


@dataclass(frozen=True)
class BillingEntry:
    kind: str  # invoice_paid, refund, top_up, wallet_payment, wallet_refund
    reference: str
    amount: Decimal
    currency: str
    at: datetime


def billing_history(trading: Trading, user_id: str, as_of: datetime | None = None
                    ) -> list[BillingEntry]:
    entries = []
    store = trading.repository.event_store
    for event in [*store.get(subscription_id(user_id)), *store.get(wallet_id(user_id))]:
        if as_of is not None and event.timestamp > as_of:
            continue
        entry = _entry(event)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.at, e.reference), reverse=True)


def _entry(event) -> BillingEntry | None:
    if isinstance(event, Subscription.InvoicePaid):
        kind = "invoice_paid" if event.method == "card" else "wallet_payment"
        return BillingEntry(kind, event.invoice, event.amount, event.currency,
                            event.timestamp)
    if isinstance(event, Subscription.Refunded):
        return BillingEntry("refund", event.reference, event.amount, event.currency,
                            event.timestamp)
    if isinstance(event, Wallet.Credited):
        return BillingEntry("top_up", event.reference, event.amount, event.currency,
                            event.timestamp)
    if isinstance(event, Wallet.Debited) and event.reason == "refund":
        # (a renewal paid from the wallet is its subscription's ``wallet_payment``)
        return BillingEntry("wallet_refund", event.reference, event.amount, event.currency,
                            event.timestamp)
    return None

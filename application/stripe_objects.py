"""Reading Stripe's objects as they arrive in webhook events, in both API shapes: before
2025 a subscription carries ``current_period_*`` and an invoice its ``subscription``; since
the 2025 ("basil") versions the period lives on the subscription's items and the invoice's
subscription under ``parent.subscription_details``, its price under a line's ``pricing``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.errors import DomainError
from domain.subscriptions import SubscriptionStatus

# Stripe's subscription statuses as ours; None: nothing to record yet (not paid for).
STATUSES: dict[str, SubscriptionStatus | None] = {
    "trialing": SubscriptionStatus.TRIALING, "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE, "unpaid": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAST_DUE, "canceled": SubscriptionStatus.CANCELLED,
    "incomplete_expired": SubscriptionStatus.CANCELLED, "incomplete": None,
}


class StripeShapeError(DomainError):
    """An object missing what a handler needs: answered 500 (Stripe retries)."""

    code = "STRIPE_EVENT_UNREADABLE"


class UnknownPriceError(StripeShapeError):
    """A subscription of one of our users at a Stripe price no plan sells: the plans'
    settings are wrong, not the event nor the server. Answered 422 with nothing recorded:
    Stripe delivers any non-2xx again (for up to three days), so once an operator names
    the price (``tradetape plans update CODE --stripe-price``) the next delivery, or a
    resend from Stripe's dashboard, records what the user paid for. Recording the event as
    ignored instead would mark its id handled, and every later delivery would be a
    duplicate that changes nothing."""

    code = "STRIPE_PRICE_UNKNOWN"


def moment(seconds: Any) -> datetime:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise StripeShapeError(f"not a Stripe timestamp: {seconds!r}")
    return datetime.fromtimestamp(seconds, UTC)


def _items(obj: dict) -> list[dict]:
    items = obj.get("items") or {}
    return list(items.get("data") or []) if isinstance(items, dict) else []


def subscription_period(obj: dict) -> tuple[datetime, datetime]:
    """``(start, end)`` of a subscription object: its own fields (older shape) or its
    first item's (2025 shape)."""
    for source in (obj, *_items(obj)):
        if source.get("current_period_end") is not None:
            return (moment(source["current_period_start"]),
                    moment(source["current_period_end"]))
    raise StripeShapeError(f"subscription {obj.get('id')} has no current period")


def subscription_price(obj: dict) -> str | None:
    for item in _items(obj):
        price = item.get("price") or item.get("plan") or {}
        if isinstance(price, dict) and price.get("id"):
            return price["id"]
    return None


def invoice_subscription(obj: dict) -> str | None:
    """The subscription an invoice bills: ``subscription`` (older shape) or
    ``parent.subscription_details.subscription`` (2025 shape)."""
    if isinstance(obj.get("subscription"), str):
        return obj["subscription"]
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    if isinstance(details.get("subscription"), str):
        return details["subscription"]
    for line in _lines(obj):
        parent = (line.get("parent") or {}).get("subscription_item_details") or {}
        if isinstance(parent.get("subscription"), str):
            return parent["subscription"]
    return None


def _lines(obj: dict) -> list[dict]:
    lines = obj.get("lines") or {}
    return list(lines.get("data") or []) if isinstance(lines, dict) else []


def invoice_period(obj: dict) -> tuple[datetime, datetime] | None:
    """The period the invoice's subscription line covers."""
    for line in _lines(obj):
        period = line.get("period") or {}
        if period.get("end") is not None:
            return moment(period["start"]), moment(period["end"])
    return None


def invoice_price(obj: dict) -> str | None:
    for line in _lines(obj):
        price = line.get("price") or line.get("plan")
        if isinstance(price, dict) and price.get("id"):
            return price["id"]
        details = (line.get("pricing") or {}).get("price_details") or {}
        if isinstance(details.get("price"), str):
            return details["price"]
    return None


def text(obj: dict, key: str) -> str | None:
    """A string field, or the id of an expanded object in its place."""
    value = obj.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None

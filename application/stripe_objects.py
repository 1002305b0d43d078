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
    """A signed event missing what its handler needs, or holding it in another type (an
    object where a list was, text for a time): answered 400 with nothing recorded. Stripe
    delivers any answer other than 2xx again, for up to three days in live mode (three
    times over a few hours in a sandbox), then marks the delivery failed in its dashboard;
    each retry is refused the same way, one log line. Not answered 2xx: that would mark the
    event handled, and a resend once the reader knows the shape would change nothing."""

    code = "STRIPE_EVENT_MALFORMED"


class StripeEventEarlyError(DomainError):
    """An event about something not recorded yet (a refund of a payment whose own event has
    not arrived, a failed payment of a subscription not created yet): answered 409 with
    nothing recorded, so that Stripe delivers it again after the event it depends on. Not
    a fault of the server (no 5xx), nor of the event."""

    code = "STRIPE_EVENT_EARLY"


class UnknownPriceError(DomainError):
    """A subscription of one of our users at a Stripe price no plan sells: the plans'
    settings are wrong, not the event nor the server. Answered 422 with nothing recorded:
    Stripe delivers any non-2xx again (for up to three days), so once an operator names
    the price (``tradetape plans update CODE --stripe-price``) the next delivery, or a
    resend from Stripe's dashboard, records what the user paid for. Recording the event as
    ignored instead would mark its id handled, and every later delivery would be a
    duplicate that changes nothing."""

    code = "STRIPE_PRICE_UNKNOWN"


def fields(value: Any, what: str) -> dict:
    """``value`` as the JSON object it must be, or STRIPE_EVENT_MALFORMED."""
    if not isinstance(value, dict):
        raise StripeShapeError(f"{what} is not an object: {type(value).__name__}")
    return value


def moment(seconds: Any) -> datetime:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise StripeShapeError(f"not a Stripe timestamp: {seconds!r:.60}")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):  # past year 9999, or before year 1
        raise StripeShapeError(f"not a Stripe timestamp: {seconds!r:.60}") from None


def part(obj: dict, key: str) -> dict:
    """An optional object inside ``obj``: ``{}`` when absent, STRIPE_EVENT_MALFORMED when
    something else is in its place."""
    value = obj.get(key)
    return {} if value is None else fields(value, f"{obj.get('object') or 'an'} {key}")


def _listed(obj: dict, key: str) -> list[dict]:
    """The objects of a Stripe list (``{"object": "list", "data": [...]}``) at ``key``."""
    data = part(obj, key).get("data") or []
    if not isinstance(data, list):
        raise StripeShapeError(f"{key} holds no list")
    return [fields(entry, f"an entry of {key}") for entry in data]


def _items(obj: dict) -> list[dict]:
    return _listed(obj, "items")


def subscription_period(obj: dict) -> tuple[datetime, datetime]:
    """``(start, end)`` of a subscription object: its own fields (older shape) or its
    first item's (2025 shape)."""
    for source in (obj, *_items(obj)):
        if source.get("current_period_end") is not None:
            return (moment(source.get("current_period_start")),
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
    details = part(part(obj, "parent"), "subscription_details")
    if isinstance(details.get("subscription"), str):
        return details["subscription"]
    for line in _lines(obj):
        parent = part(part(line, "parent"), "subscription_item_details")
        if isinstance(parent.get("subscription"), str):
            return parent["subscription"]
    return None


def _lines(obj: dict) -> list[dict]:
    return _listed(obj, "lines")


def invoice_period(obj: dict) -> tuple[datetime, datetime] | None:
    """The period the invoice's subscription line covers."""
    for line in _lines(obj):
        period = part(line, "period")
        if period.get("end") is not None:
            return moment(period.get("start")), moment(period["end"])
    return None


def invoice_price(obj: dict) -> str | None:
    for line in _lines(obj):
        price = line.get("price") or line.get("plan")
        if isinstance(price, dict) and price.get("id"):
            return price["id"]
        details = part(part(line, "pricing"), "price_details")
        if isinstance(details.get("price"), str):
            return details["price"]
    return None


def text(obj: dict, key: str) -> str | None:
    """A string field, or the id of an expanded object in its place."""
    value = obj.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


# Stripe takes amounts of up to eight digits in minor units (99999999: $999,999.99) and
# some currencies up to twelve; anything longer is no amount Stripe could have charged,
# signed or not, and would reach the wallet and the billing ledger as given.
MAX_MINOR_AMOUNT = 10**12 - 1


def minor_amount(obj: dict, key: str) -> int:
    """An amount in the currency's minor units (cents), as Stripe sends it: an integer of
    at most twelve digits."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StripeShapeError(f"{obj.get('object') or 'an object'} {obj.get('id')!s:.60} "
                               f"has no amount in {key}: {value!r:.60}")
    if value > MAX_MINOR_AMOUNT:
        raise StripeShapeError(f"{obj.get('object') or 'an object'} {obj.get('id')!s:.60} "
                               f"has an amount in {key} past twelve digits")
    return value

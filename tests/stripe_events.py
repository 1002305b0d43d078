"""Stripe webhook bodies for tests, built from the real event files in
``tests/data/stripe/`` (ids, customers, prices, periods and times set per test), in the
2020 shape (period on the subscription, ``invoice.subscription``) or the 2025 one (period on
the items, the subscription under ``invoice.parent``)."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from tests.stripe_stub import DATA, fixtures


@cache
def _file(path: str) -> dict[str, Any]:
    return json.loads((DATA / path).read_text())


def envelope(kind: str, obj: dict, created: int, event_id: str) -> dict:
    """Stripe's event around ``obj``, from a real event file's envelope."""
    event = copy.deepcopy(_file("events/customer.subscription.created.json"))
    event.update(id=event_id, type=kind, created=created,
                 data={"object": obj, "previous_attributes": {}})
    return event


def checkout_completed(event_id: str, created: int, *, user: str, customer: str,
                       subscription: str) -> dict:
    obj = copy.deepcopy(_file("event-data/checkout.session.completed.json")["object"])
    obj.update(client_reference_id=user, customer=customer, subscription=subscription,
               mode="subscription", status="complete", payment_status="paid")
    return envelope("checkout.session.completed", obj, created, event_id)


def subscription_event(kind: str, event_id: str, created: int, *, sub: str, customer: str,
                       price: str, status: str, period: tuple[int, int],
                       cancel_at_period_end: bool = False, shape: str = "2020",
                       sub_created: int | None = None) -> dict:
    """``customer.subscription.created|updated|deleted``; ``sub_created``: when Stripe
    created the subscription (the object's ``created``; else the event file's)."""
    obj = copy.deepcopy(_file("events/customer.subscription.updated.json")["data"]["object"])
    obj.update(id=sub, customer=customer, status=status,
               cancel_at_period_end=cancel_at_period_end)
    if sub_created is not None:
        obj["created"] = sub_created
    item = obj["items"]["data"][0]
    item["price"]["id"] = item["plan"]["id"] = price
    item["subscription"] = sub
    if shape == "2025":  # the period moved to the items
        obj.pop("current_period_start"), obj.pop("current_period_end")
        item["current_period_start"], item["current_period_end"] = period
    else:
        obj["current_period_start"], obj["current_period_end"] = period
    return envelope(kind, obj, created, event_id)


def invoice_event(kind: str, event_id: str, created: int, *, invoice: str, sub: str,
                  customer: str, price: str, amount: int, period: tuple[int, int],
                  shape: str = "2020", charge: str | None = None) -> dict:
    """``invoice.paid`` / ``invoice.payment_failed`` of a subscription's period."""
    paid = kind == "invoice.paid"
    if shape == "2025":
        obj = copy.deepcopy(_file("event-data/invoice.payment_failed.json")["object"])
        obj["parent"]["subscription_details"]["subscription"] = sub
        line = obj["lines"]["data"][0]
        line["pricing"]["price_details"]["price"] = price
        line["parent"]["subscription_item_details"]["subscription"] = sub
    else:
        obj = copy.deepcopy(_file("events/invoice.paid.json")["data"]["object"])
        obj["subscription"] = sub
        line = obj["lines"]["data"][0]
        line["price"]["id"] = price
        line["subscription"] = sub
    line["period"] = {"start": period[0], "end": period[1]}
    line["amount"] = amount
    obj.update(id=invoice, customer=customer, currency="usd", amount_due=amount,
               amount_paid=amount if paid else 0, status="paid" if paid else "open",
               billing_reason="subscription_cycle")
    if charge is not None:
        obj["charge"] = charge
    return envelope(kind, obj, created, event_id)


def payment_intent_event(kind: str, event_id: str, created: int, *, intent: str,
                         customer: str, user: str, amount: int, currency: str,
                         method: str = "promptpay") -> dict:
    """``payment_intent.succeeded|payment_failed`` of a top-up (Stripe's example object)."""
    obj = copy.deepcopy(fixtures()["payment_intent"])
    succeeded = kind == "payment_intent.succeeded"
    obj.update(id=intent, customer=customer, amount=amount, currency=currency.lower(),
               amount_received=amount if succeeded else 0, payment_method_types=[method],
               status="succeeded" if succeeded else "requires_payment_method",
               latest_charge=f"ch_{intent}", next_action=None,
               metadata={"tradetape_user": user, "tradetape_purpose": "top_up"})
    return envelope(kind, obj, created, event_id)


def charge_refunded(event_id: str, created: int, *, charge: str, customer: str,
                    intent: str | None, amount: int, refunded: int, currency: str) -> dict:
    obj = copy.deepcopy(fixtures()["charge"])
    obj.update(id=charge, customer=customer, payment_intent=intent, amount=amount,
               amount_refunded=refunded, currency=currency.lower(), refunded=True)
    return envelope("charge.refunded", obj, created, event_id)


def body(event: dict) -> bytes:
    """The bytes sent (and signed): pretty-printed, as Stripe sends them."""
    return json.dumps(event, indent=2).encode()

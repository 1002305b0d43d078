"""A user who still pays keeps their plan. Of a customer's Stripe subscriptions the newest
is the current one, but each has its own status at Stripe: when the current one ends, the
user falls back to the newest other one still live (active, trialing, past due within its
grace) as the events received so far tell it. Real event files, signed and posted to
``/webhooks/stripe`` as in ``test_billing``."""

from __future__ import annotations

from itertools import permutations

import pytest

from tests.api import test_billing
from tests.api import test_billing_other_subscription as other
from tests.api.test_billing import CHECKOUT, DAY, MONTH, PRICE, SUBSCRIPTION, T, advance, deliver
from tests.stripe_events import checkout_completed, invoice_event, subscription_event

pytestmark = pytest.mark.timeout(300)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures

OLD_RENEWED = (T + 30 * DAY, T + 60 * DAY)  # sub_old's second month: ends 2026-04-30
OLD_CREATED, NEW_CREATED, NEW_MONTH = other.OLD_CREATED, other.NEW_CREATED, other.NEW_MONTH


def subscribed_old_then_new(billing, stripe_stub):
    """Alice bought PRO as ``sub_old`` (ends 2026-03-31), then again as ``sub_new`` (ends
    2026-04-01, the current one); both are active at Stripe."""
    alice, customer = other.checked_out(billing, stripe_stub)
    other.subscribe(billing, customer, alice.user_id, "sub_old", OLD_CREATED, T, MONTH, "old")
    other.subscribe(billing, customer, alice.user_id, "sub_new", NEW_CREATED, T + 10, NEW_MONTH,
              "new")
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert state["currentPeriodEnd"].startswith("2026-04-01")  # sub_new's: the current one
    return alice, customer


def ended(customer: str, sub: str, at: int, n: str = "") -> dict:
    period, created = (NEW_MONTH, NEW_CREATED) if sub == "sub_new" else (MONTH, OLD_CREATED)
    return subscription_event("customer.subscription.deleted", f"evt_{sub}_del{n}", at,
                              sub=sub, customer=customer, price=PRICE, status="canceled",
                              period=period, sub_created=created)


def old_renewed(customer: str, at: int, n: str = "") -> dict:
    return subscription_event("customer.subscription.updated", f"evt_old_renewed{n}", at,
                              sub="sub_old", customer=customer, price=PRICE,
                              status="active", period=OLD_RENEWED, sub_created=OLD_CREATED)


def test_the_newer_subscription_ended_the_older_one_still_paid_keeps_the_plan(
        billing, stripe_stub):
    alice, customer = subscribed_old_then_new(billing, stripe_stub)
    assert deliver(billing, ended(customer, "sub_new", T + 20)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["currentPeriodEnd"].startswith("2026-03-31")  # sub_old's
    assert state["subscription"]["graceEndsAt"] is None
    assert state["entitlements"]["plan"] == "PRO"


def test_news_of_the_older_one_while_not_current_decides_the_fallback(billing, stripe_stub):
    """sub_old renewed (and its invoice paid) while sub_new was current: the current one
    does not change, but once sub_new ends, sub_old stands as its latest news said."""
    alice, customer = subscribed_old_then_new(billing, stripe_stub)
    for event in (old_renewed(customer, T + 30 * DAY),
                  invoice_event("invoice.paid", "evt_old_paid", T + 30 * DAY + 1,
                                invoice="in_old_2", sub="sub_old", customer=customer,
                                price=PRICE, amount=1000, period=OLD_RENEWED)):
        assert deliver(billing, event).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert state["currentPeriodEnd"].startswith("2026-04-01")  # still sub_new's
    assert deliver(billing, ended(customer, "sub_new", T + 30 * DAY + 5)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["currentPeriodEnd"].startswith("2026-04-30")
    assert state["entitlements"]["plan"] == "PRO"


def test_both_ended_leaves_the_user_cancelled(billing, stripe_stub):
    alice, customer = subscribed_old_then_new(billing, stripe_stub)
    for event in (ended(customer, "sub_old", T + 20), ended(customer, "sub_new", T + 21)):
        assert deliver(billing, event).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "cancelled"
    assert state["entitlements"]["plan"] == "FREE"


def test_an_older_one_past_due_is_fallen_back_to_with_its_own_grace(billing, stripe_stub):
    """sub_old's payment failed while it was not current: after sub_new's end the user is
    past due on sub_old, within the grace counted from that failure, then expires."""
    alice, customer = subscribed_old_then_new(billing, stripe_stub)
    failed = invoice_event("invoice.payment_failed", "evt_old_failed", T + 20,
                           invoice="in_old_2", sub="sub_old", customer=customer,
                           price=PRICE, amount=1000, period=OLD_RENEWED)
    assert deliver(billing, failed).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == "active"
    advance(billing, alice, days=1)
    assert deliver(billing, ended(customer, "sub_new", T + DAY)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "past_due"
    assert state["subscription"]["graceEndsAt"].startswith("2026-03-04")  # failure + 3 days
    assert state["entitlements"]["plan"] == "PRO"
    advance(billing, alice, days=2, seconds=1)
    assert billing.runtime.billing.sweep() == [alice.user_id]
    assert billing.gql(SUBSCRIPTION, token=alice.token)["entitlements"]["plan"] == "FREE"


def test_an_older_one_past_due_beyond_its_grace_is_not_fallen_back_to(billing, stripe_stub):
    alice, customer = subscribed_old_then_new(billing, stripe_stub)
    failed = invoice_event("invoice.payment_failed", "evt_old_failed", T + 20,
                           invoice="in_old_2", sub="sub_old", customer=customer,
                           price=PRICE, amount=1000, period=OLD_RENEWED)
    assert deliver(billing, failed).status_code == 200
    advance(billing, alice, days=4)
    assert deliver(billing, ended(customer, "sub_new", T + 4 * DAY)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "cancelled"
    assert state["entitlements"]["plan"] == "FREE"


def test_every_arrival_order_ends_on_the_older_subscription_still_paid(billing, stripe_stub):
    """sub_old created, sub_new created (the newer), sub_old renewed, sub_new ended: Stripe
    may deliver them in any order; each of the 24 ends with sub_old's renewed month, PRO.
    Each order is its own user, with its own subscriptions."""
    for n, order in enumerate(permutations(range(4))):
        user = billing.user(f"user{n}")
        billing.gql(CHECKOUT, {"plan": "PRO"}, user.token)
        customer = next(o["id"] for o in reversed(stripe_stub.objects.values())
                        if o["object"] == "customer")
        old, new = f"sub_old{n}", f"sub_new{n}"
        for sub in (old, new):
            checkout = checkout_completed(f"evt_co_{sub}", T, user=user.user_id,
                                          customer=customer, subscription=sub)
            assert deliver(billing, checkout).status_code == 200
        events = [
            subscription_event("customer.subscription.created", f"evt_cr_{old}", T + 1,
                               sub=old, customer=customer, price=PRICE, status="active",
                               period=MONTH, sub_created=OLD_CREATED),
            subscription_event("customer.subscription.created", f"evt_cr_{new}", T + 10,
                               sub=new, customer=customer, price=PRICE, status="active",
                               period=NEW_MONTH, sub_created=NEW_CREATED),
            subscription_event("customer.subscription.updated", f"evt_up_{old}",
                               T + 30 * DAY, sub=old, customer=customer, price=PRICE,
                               status="active", period=OLD_RENEWED, sub_created=OLD_CREATED),
            subscription_event("customer.subscription.deleted", f"evt_del_{new}",
                               T + 30 * DAY + 5, sub=new, customer=customer, price=PRICE,
                               status="canceled", period=NEW_MONTH, sub_created=NEW_CREATED),
        ]
        for i in order:
            response = deliver(billing, events[i])
            assert response.status_code == 200, (order, i, response.text)
        state = billing.gql(SUBSCRIPTION, token=user.token)
        assert (state["subscription"]["status"], state["subscription"]["currentPeriodEnd"][:10],
                state["entitlements"]["plan"]) == ("active", "2026-04-30", "PRO"), order


def test_the_current_one_past_its_grace_falls_back_instead_of_expiring(billing, stripe_stub):
    """sub_new's payment failed and its grace ran out; sub_old is still active at Stripe:
    the sweep moves the user to sub_old instead of expiring them."""
    alice, customer = subscribed_old_then_new(billing, stripe_stub)
    past_due = subscription_event("customer.subscription.updated", "evt_new_due", T + 20,
                                  sub="sub_new", customer=customer, price=PRICE,
                                  status="past_due", period=NEW_MONTH,
                                  sub_created=NEW_CREATED)
    assert deliver(billing, past_due).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == (
        "past_due")
    advance(billing, alice, days=3, seconds=1)
    assert billing.runtime.billing.sweep() == []  # nobody expired
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["currentPeriodEnd"].startswith("2026-03-31")  # sub_old's
    assert state["entitlements"]["plan"] == "PRO"

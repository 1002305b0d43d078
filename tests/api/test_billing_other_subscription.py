"""A user's Stripe customer can hold more than their current subscription (an old one
replaced by a new checkout, one made in Stripe's dashboard): what Stripe says of another
subscription must not change the current one. Real event files, signed and posted to
``/webhooks/stripe`` as in ``test_billing``."""

from __future__ import annotations

import pytest

from tests.api import test_billing
from tests.api.test_billing import (
    CHECKOUT,
    DAY,
    HISTORY,
    MONTH,
    PRICE,
    SUBSCRIPTION,
    T,
    deliver,
)
from tests.stripe_events import checkout_completed, invoice_event, subscription_event

pytestmark = pytest.mark.timeout(120)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures


def subscribed_twice(billing, stripe_stub):
    """Alice bought PRO as ``sub_old``, then bought it again as ``sub_new`` (the current
    one); ``sub_old`` still exists at Stripe."""
    alice = billing.user("alice")
    billing.gql(CHECKOUT, {"plan": "PRO"}, alice.token)
    customer = next(o["id"] for o in stripe_stub.objects.values()
                    if o["object"] == "customer")
    later = (T + 10, T + 10 + 30 * DAY)
    for n, (sub, at, period) in enumerate((("sub_old", T, MONTH),
                                          ("sub_new", T + 10, later))):
        for event in (checkout_completed(f"evt_co_{n}", at + 1, user=alice.user_id,
                                         customer=customer, subscription=sub),
                      subscription_event("customer.subscription.created", f"evt_cr_{n}",
                                         at + 2, sub=sub, customer=customer, price=PRICE,
                                         status="active", period=period)):
            assert deliver(billing, event).status_code == 200
    return alice, customer


def test_a_failed_payment_of_another_subscription_leaves_the_current_one_active(
        billing, stripe_stub):
    alice, customer = subscribed_twice(billing, stripe_stub)
    failed = invoice_event("invoice.payment_failed", "evt_old_failed", T + 20,
                           invoice="in_old_2", sub="sub_old", customer=customer,
                           price=PRICE, amount=1000, period=(T + 30 * DAY, T + 60 * DAY),
                           shape="2025")
    assert deliver(billing, failed).status_code == 200  # acknowledged: nothing to redo
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["graceEndsAt"] is None
    assert state["entitlements"]["plan"] == "PRO"


def test_another_subscription_past_due_or_ended_leaves_the_current_one_active(
        billing, stripe_stub):
    alice, customer = subscribed_twice(billing, stripe_stub)
    for n, status in enumerate(("past_due", "canceled")):
        kind = "customer.subscription." + ("updated" if status == "past_due" else "deleted")
        event = subscription_event(kind, f"evt_old_{n}", T + 20 + n, sub="sub_old",
                                   customer=customer, price=PRICE, status=status,
                                   period=MONTH)
        assert deliver(billing, event).status_code == 200
        state = billing.gql(SUBSCRIPTION, token=alice.token)
        assert state["subscription"]["status"] == "active", status
        assert state["entitlements"]["plan"] == "PRO"


def test_a_failed_payment_of_the_current_subscription_still_makes_it_past_due(
        billing, stripe_stub):
    alice, customer = subscribed_twice(billing, stripe_stub)
    failed = invoice_event("invoice.payment_failed", "evt_new_failed", T + 20,
                           invoice="in_new_2", sub="sub_new", customer=customer,
                           price=PRICE, amount=1000, period=(T + 30 * DAY, T + 60 * DAY))
    assert deliver(billing, failed).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == (
        "past_due")


# When Stripe created each subscription (the objects' own ``created``): sub_old long
# before sub_new. Events come whenever Stripe sends them, the newest subscription wins.
OLD_CREATED, NEW_CREATED = T - 40 * DAY, T + 10
NEW_MONTH = (T + 10, T + 10 + 31 * DAY)  # ends 2026-04-01T12:00:10Z


def subscribe(billing, customer: str, user: str, sub: str, created: int, at: int,
              period: tuple[int, int], n: str) -> None:
    for event in (checkout_completed(f"evt_co_{n}", at, user=user, customer=customer,
                                     subscription=sub),
                  subscription_event("customer.subscription.created", f"evt_cr_{n}", at + 1,
                                     sub=sub, customer=customer, price=PRICE,
                                     status="active", period=period, sub_created=created)):
        assert deliver(billing, event).status_code == 200


def checked_out(billing, stripe_stub):
    alice = billing.user("alice")
    billing.gql(CHECKOUT, {"plan": "PRO"}, alice.token)
    customer = next(o["id"] for o in stripe_stub.objects.values()
                    if o["object"] == "customer")
    return alice, customer


def test_late_news_of_an_older_subscription_leaves_the_newer_one_current(
        billing, stripe_stub):
    alice, customer = checked_out(billing, stripe_stub)
    subscribe(billing, customer, alice.user_id, "sub_old", OLD_CREATED, T, MONTH, "old")
    subscribe(billing, customer, alice.user_id, "sub_new", NEW_CREATED, T + 10, NEW_MONTH,
              "new")
    renewed = (T + 30 * DAY, T + 60 * DAY)  # sub_old's next month, told after sub_new's
    for event in (
            subscription_event("customer.subscription.updated", "evt_old_upd", T + 20,
                               sub="sub_old", customer=customer, price=PRICE,
                               status="active", period=renewed, cancel_at_period_end=True,
                               sub_created=OLD_CREATED),
            invoice_event("invoice.paid", "evt_old_paid", T + 21, invoice="in_old_2",
                          sub="sub_old", customer=customer, price=PRICE, amount=1000,
                          period=renewed)):
        assert deliver(billing, event).status_code == 200
        state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
        assert (state["status"], state["cancelAtPeriodEnd"]) == ("active", False)
        assert state["currentPeriodEnd"].startswith("2026-04-01"), event["type"]  # sub_new's


def test_a_new_subscription_created_after_the_old_ones_end_arrived_is_current(
        billing, stripe_stub):
    alice, customer = checked_out(billing, stripe_stub)
    subscribe(billing, customer, alice.user_id, "sub_old", OLD_CREATED, T, MONTH, "old")
    ended = subscription_event("customer.subscription.deleted", "evt_old_del", T + 20,
                               sub="sub_old", customer=customer, price=PRICE,
                               status="canceled", period=MONTH, sub_created=OLD_CREATED)
    assert deliver(billing, ended).status_code == 200  # sub_old ended when sub_new began
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == (
        "cancelled")
    subscribe(billing, customer, alice.user_id, "sub_new", NEW_CREATED, T + 10, NEW_MONTH,
              "new")  # its events were sent before sub_old's end, they arrive after it
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["currentPeriodEnd"].startswith("2026-04-01")
    assert state["entitlements"]["plan"] == "PRO"


def test_a_new_subscription_past_due_before_its_creation_arrived_stays_past_due(
        billing, stripe_stub):
    alice, customer = checked_out(billing, stripe_stub)
    subscribe(billing, customer, alice.user_id, "sub_old", OLD_CREATED, T, MONTH, "old")
    past_due = subscription_event("customer.subscription.updated", "evt_new_due",
                                  T + 10 + 30 * DAY, sub="sub_new", customer=customer,
                                  price=PRICE, status="past_due", period=NEW_MONTH,
                                  sub_created=NEW_CREATED)
    assert deliver(billing, past_due).status_code == 200
    subscribe(billing, customer, alice.user_id, "sub_new", NEW_CREATED, T + 10, NEW_MONTH,
              "new")
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert state["status"] == "past_due"
    assert state["graceEndsAt"] is not None  # it expires unless paid
    assert state["currentPeriodEnd"].startswith("2026-04-01")


def test_a_newer_subscription_ended_before_its_creation_arrived_never_becomes_current(
        billing, stripe_stub):
    """sub_new was bought and ended at once; Stripe's events of it arrive end first. Its
    creation, update and invoice arriving after its end do not make it the current one:
    sub_old stays as it was."""
    alice, customer = checked_out(billing, stripe_stub)
    subscribe(billing, customer, alice.user_id, "sub_old", OLD_CREATED, T, MONTH, "old")
    ended = subscription_event("customer.subscription.deleted", "evt_new_del", T + 20,
                               sub="sub_new", customer=customer, price=PRICE,
                               status="canceled", period=NEW_MONTH, sub_created=NEW_CREATED)
    assert deliver(billing, ended).status_code == 200
    subscribe(billing, customer, alice.user_id, "sub_new", NEW_CREATED, T + 10, NEW_MONTH,
              "new")
    for event in (
            subscription_event("customer.subscription.updated", "evt_new_upd", T + 12,
                               sub="sub_new", customer=customer, price=PRICE,
                               status="active", period=NEW_MONTH, sub_created=NEW_CREATED),
            invoice_event("invoice.paid", "evt_new_paid", T + 11, invoice="in_new_1",
                          sub="sub_new", customer=customer, price=PRICE, amount=1000,
                          period=NEW_MONTH)):
        assert deliver(billing, event).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["currentPeriodEnd"].startswith("2026-03-31")  # sub_old's
    assert state["entitlements"]["plan"] == "PRO"


def test_a_subscription_ended_before_any_other_news_of_it_stays_ended(billing, stripe_stub):
    """The only subscription's end is the first event to arrive: its creation and its
    paid invoice arriving later leave it ended (FREE's limits), the payment recorded."""
    alice, customer = checked_out(billing, stripe_stub)
    ended = subscription_event("customer.subscription.deleted", "evt_del", T + 20,
                               sub="sub_once", customer=customer, price=PRICE,
                               status="canceled", period=MONTH, sub_created=T)
    assert deliver(billing, ended).status_code == 200
    subscribe(billing, customer, alice.user_id, "sub_once", T, T + 1, MONTH, "once")
    paid = invoice_event("invoice.paid", "evt_paid", T + 3, invoice="in_once", sub="sub_once",
                         customer=customer, price=PRICE, amount=1000, period=MONTH)
    assert deliver(billing, paid).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "cancelled"
    assert state["entitlements"]["plan"] == "FREE"
    history = billing.gql(HISTORY, token=alice.token)["billingHistory"]["edges"]
    assert [(e["node"]["kind"], e["node"]["reference"]) for e in history] == [
        ("invoice_paid", "in_once")]


def recorded_undated(billing, user: str, sub: str, period: tuple[int, int]) -> None:
    """A subscription as servers recorded it before ``Subscription.Dated`` existed: its
    events say nothing of when Stripe created it."""
    from datetime import UTC, datetime

    from domain.subscriptions import Period, Subscription, SubscriptionStatus

    runtime = billing.runtime
    plan = runtime.billing.catalogue.find("PRO")
    start, end = (datetime.fromtimestamp(s, UTC) for s in period)
    runtime.trading.save_all(Subscription.start(
        runtime.trading.cause("system:billing"), user,
        Period(sub, SubscriptionStatus.ACTIVE, start, end, plan.id, plan.version, False,
               T + 1)))


def test_another_subscription_past_due_beside_an_undated_one_is_recorded_at_once(
        billing, stripe_stub):
    """The current subscription was recorded before its creation time was kept. A newer
    subscription's ``past_due`` is recorded at its first delivery (it used to be refused
    409 until the undated one's next event, maybe a month away): the undated one counts as
    the older, so the newer takes over, past due with grace. The undated one's own late
    news, once dated, is older news: nothing changes."""
    alice, customer = checked_out(billing, stripe_stub)
    recorded_undated(billing, alice.user_id, "sub_kept", MONTH)
    past_due = subscription_event("customer.subscription.updated", "evt_new_due", T + 20,
                                  sub="sub_new", customer=customer, price=PRICE,
                                  status="past_due", period=NEW_MONTH,
                                  sub_created=NEW_CREATED)
    response = deliver(billing, past_due)
    assert response.status_code == 200, response.text
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert (state["status"], state["currentPeriodEnd"][:10]) == ("past_due", "2026-04-01")
    assert state["graceEndsAt"] is not None
    late = subscription_event("customer.subscription.updated", "evt_kept_upd", T + 30,
                              sub="sub_kept", customer=customer, price=PRICE,
                              status="active", period=MONTH, sub_created=T)
    assert deliver(billing, late).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"] == state

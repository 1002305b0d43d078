"""Every Stripe subscription of a user is kept and shown, not only the current one: one at
a price no plan sells (entitles nothing, shown, the operator told; entitles by the plan once
one sells the price), one whose first news is a failed payment (kept past due), and the
list of them in GraphQL. Real event files, signed and posted to ``/webhooks/stripe`` as in
``test_billing``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.plans import PlanTerms
from domain.subscriptions import Subscription, subscription_id
from tests.api import test_billing
from tests.api import test_billing_fallback as fallback
from tests.api import test_billing_other_subscription as other
from tests.api.test_billing import DAY, PRICE, SUBSCRIPTION, T, advance, deliver
from tests.stripe_events import invoice_event, subscription_event

pytestmark = pytest.mark.timeout(300)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures

UNSOLD = "price_team_not_on_sale_yet"
SUBSCRIPTIONS = """{ subscriptions { stripeSubscription current status plan { code }
  stripePrice currentPeriodStart currentPeriodEnd cancelAtPeriodEnd graceEndsAt } }"""
UNSOLD_LIST = "{ unsoldSubscriptions { userId stripeSubscription stripePrice status } }"
TEAM = PlanTerms(code="TEAM", name="Team", price=Decimal("30.00"),
                 currency="USD", period="month", stripe_price=UNSOLD, max_bots=20,
                 max_live_bots=20, max_webhooks=50, features=("live_trading", "webhooks"))


def listed(billing, account) -> list[tuple]:
    found = billing.gql(SUBSCRIPTIONS, token=account.token)["subscriptions"]
    return [(s["stripeSubscription"], s["current"], s["status"],
             s["plan"] and s["plan"]["code"], s["stripePrice"]) for s in found]


def unsold_one(customer: str, at: int) -> dict:
    """sub_team, bought in Stripe's dashboard before sub_new at a price no plan sells."""
    return subscription_event("customer.subscription.created", "evt_team_cr", at,
                              sub="sub_team", customer=customer, price=UNSOLD,
                              status="active", period=fallback.OLD_RENEWED,
                              sub_created=other.OLD_CREATED + 5)


def test_the_list_shows_the_current_subscription_first_then_the_others(billing, stripe_stub):
    alice, _ = fallback.subscribed_old_then_new(billing, stripe_stub)
    assert listed(billing, alice) == [("sub_new", True, "active", "PRO", PRICE),
                                      ("sub_old", False, "active", "PRO", PRICE)]
    found = billing.gql(SUBSCRIPTIONS, token=alice.token)["subscriptions"]
    assert found[0]["currentPeriodEnd"].startswith("2026-04-01")
    assert found[1]["currentPeriodStart"].startswith("2026-03-01")
    assert found[1]["cancelAtPeriodEnd"] is False
    # The existing field still names the current one.
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["currentPeriodEnd"] == (
        found[0]["currentPeriodEnd"])
    assert listed(billing, billing.user("bob")) == []


def test_a_subscription_at_a_price_no_plan_sells_is_shown_and_entitles_nothing(
        billing, stripe_stub, caplog):
    alice, customer = fallback.subscribed_old_then_new(billing, stripe_stub)
    deliver(billing, fallback.ended(customer, "sub_old", T + 15))
    with caplog.at_level(logging.WARNING, logger="tradetape.billing"):
        assert deliver(billing, unsold_one(customer, T + 20)).status_code == 200
    assert any("sub_team" in r.message and UNSOLD in r.message and "plans update" in r.message
               for r in caplog.records)  # the operator is told how to sell it
    assert ("sub_team", False, "active", None, UNSOLD) in listed(billing, alice)
    ops = billing.user("ops", role="admin")
    assert billing.gql(UNSOLD_LIST, token=ops.token)["unsoldSubscriptions"] == [
        {"userId": alice.user_id, "stripeSubscription": "sub_team", "stripePrice": UNSOLD,
         "status": "active"}]
    assert deliver(billing, fallback.ended(customer, "sub_new", T + 30)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "cancelled"  # no fallback to what sells nothing
    assert state["entitlements"]["plan"] == "FREE"


def test_once_a_plan_sells_its_price_the_other_subscription_entitles_by_that_plan(
        billing, stripe_stub):
    alice, customer = fallback.subscribed_old_then_new(billing, stripe_stub)
    deliver(billing, fallback.ended(customer, "sub_old", T + 15))
    assert deliver(billing, unsold_one(customer, T + 20)).status_code == 200
    billing.runtime.billing.catalogue.create(TEAM, "ops")  # the operator names the price
    assert deliver(billing, fallback.ended(customer, "sub_new", T + 30)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert (state["subscription"]["status"], state["subscription"]["plan"]["code"]) == (
        "active", "TEAM")
    assert state["subscription"]["currentPeriodEnd"].startswith("2026-04-30")
    assert state["entitlements"] == {"plan": "TEAM", "enforced": True, "maxBots": 20}


def test_a_user_left_cancelled_falls_back_at_the_sweep_once_the_price_is_sold(
        billing, stripe_stub):
    alice, customer = fallback.subscribed_old_then_new(billing, stripe_stub)
    for event in (fallback.ended(customer, "sub_old", T + 15), unsold_one(customer, T + 20),
                  fallback.ended(customer, "sub_new", T + 30)):
        assert deliver(billing, event).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["entitlements"]["plan"] == "FREE"
    billing.runtime.billing.catalogue.create(TEAM, "ops")
    assert billing.runtime.billing.sweep() == []
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert (state["subscription"]["status"], state["entitlements"]["plan"]) == (
        "active", "TEAM")
    ops = billing.user("ops", role="admin")
    assert billing.gql(UNSOLD_LIST, token=ops.token)["unsoldSubscriptions"] == []


def ghost_failed(customer: str, at: int, n: str = "") -> dict:
    """The first news of sub_ghost (made in Stripe's dashboard): its payment failed."""
    return invoice_event("invoice.payment_failed", f"evt_ghost_failed{n}", at,
                         invoice="in_ghost_1", sub="sub_ghost", customer=customer,
                         price=PRICE, amount=1000, period=fallback.OLD_RENEWED, shape="2025")


def test_a_failed_payment_of_a_subscription_never_seen_is_kept_past_due(billing, stripe_stub):
    alice, customer = fallback.subscribed_old_then_new(billing, stripe_stub)
    deliver(billing, fallback.ended(customer, "sub_old", T + 15))
    advance(billing, alice, days=1)
    for n in ("", "_again"):  # told twice (two event ids): kept once, the grace not moved
        assert deliver(billing, ghost_failed(customer, T + DAY, n)).status_code == 200
    assert ("sub_ghost", False, "past_due", "PRO", PRICE) in listed(billing, alice)
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == "active"
    assert deliver(billing, fallback.ended(customer, "sub_new", T + DAY + 5)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "past_due"  # still paying, within its grace
    assert state["subscription"]["graceEndsAt"].startswith("2026-03-05")  # failure + 3 days
    assert state["entitlements"]["plan"] == "PRO"


def test_a_never_seen_subscriptions_creation_arriving_after_its_failure_stays_past_due(
        billing, stripe_stub):
    """sub_ghost is newer than sub_new: its creation (told before the failure) takes over,
    past due as its later failure said, not active."""
    alice, customer = fallback.subscribed_old_then_new(billing, stripe_stub)
    assert deliver(billing, ghost_failed(customer, T + 40)).status_code == 200
    created = subscription_event("customer.subscription.created", "evt_ghost_cr", T + 30,
                                 sub="sub_ghost", customer=customer, price=PRICE,
                                 status="active", period=fallback.OLD_RENEWED,
                                 sub_created=T + 30)
    assert deliver(billing, created).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert (state["status"], state["currentPeriodEnd"][:10]) == ("past_due", "2026-04-30")
    assert state["graceEndsAt"] is not None
    assert listed(billing, alice)[0][:3] == ("sub_ghost", True, "past_due")


def test_a_failed_payment_of_the_users_first_subscription_still_waits_for_it(billing,
                                                                              stripe_stub):
    alice, customer = other.checked_out(billing, stripe_stub)
    response = deliver(billing, ghost_failed(customer, T + 40))
    assert response.status_code == 409  # its creation comes: Stripe delivers this again
    assert response.json()["error"]["code"] == "STRIPE_EVENT_EARLY"
    assert listed(billing, alice) == []


def test_news_of_another_subscription_stored_by_the_last_version_still_loads(
        billing, stripe_stub):
    """``Subscription.OtherTold`` as version 1 stored it (no price; a subclass of
    ``Renewed`` then): read back, it is where the user falls back to."""
    alice, customer = fallback.subscribed_old_then_new(billing, stripe_stub)
    trading = billing.runtime.trading
    sub = trading.load(subscription_id(alice.user_id), Subscription)
    known = sub.others["sub_old"]
    state = {"timestamp": trading.cause("x").at, "actor": "system:billing",
             "correlation_id": "stripe:evt_v1", "stripe_subscription": "sub_old",
             **{k: v for k, v in known.items() if k != "stripe_price"},
             "period_start": _utc(fallback.OLD_RENEWED[0]),
             "period_end": _utc(fallback.OLD_RENEWED[1]), "told_at": T + 12}
    payload = trading.mapper.transcoder.encode(state)
    assert b"stripe_price" not in payload and b"class_version" not in json.dumps(
        json.loads(payload)).encode()
    trading.recorder.insert_events([StoredEvent(sub.id, sub.version + 1,
                                                get_topic(Subscription.OtherTold), payload)])
    assert deliver(billing, fallback.ended(customer, "sub_new", T + 30)).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert (state["status"], state["currentPeriodEnd"][:10]) == ("active", "2026-04-30")


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

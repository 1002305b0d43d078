"""A period paid from the wallet is told to Stripe: the open invoice Stripe keeps retrying
on the card is marked paid outside Stripe (no charge), and Stripe's ``invoice.paid`` of it
then records no card payment. The user pays the period once. The real ``stripe`` library
talks to the local stub; webhooks are real event files, signed, as in ``test_billing``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api import test_billing
from tests.api.test_billing import DAY, PRICE, SUBSCRIPTION, T, advance, checkout_pro, deliver
from tests.stripe_events import invoice_event, payment_intent_event

pytestmark = pytest.mark.timeout(120)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures

TOP_UP = """mutation { topUp(amount: "25.00", currency: "USD", method: CARD) {
  __typename ... on TopUp { paymentIntentId } } }"""
REVENUE = "query($month: String!) { revenue(month: $month) { currency revenue } }"
PAY = """mutation { payFromWallet { __typename ... on BillingSubscription { status }
  ... on BillingErrors { code message } } }"""


def past_due_with_a_wallet(billing, stripe_stub, alice) -> tuple[str, str]:
    """Alice pays PRO by card (in_1), tops up 25.00 USD, then in_2's card payment fails:
    Stripe holds in_2 open and retries it."""
    customer, sub = checkout_pro(billing, stripe_stub, alice)
    intent = billing.gql(TOP_UP, token=alice.token)["topUp"]["paymentIntentId"]
    topped = payment_intent_event("payment_intent.succeeded", "evt_pi", T + 60, intent=intent,
                                  customer=customer, user=alice.user_id, amount=2500,
                                  currency="USD", method="card")
    assert deliver(billing, topped).status_code == 200
    failed = invoice_event("invoice.payment_failed", "evt_failed_2", T + 30 * DAY,
                           invoice="in_2", sub=sub, customer=customer, price=PRICE,
                           amount=1000, period=test_billing.NEXT_MONTH)
    stripe_stub.holds(failed["data"]["object"])
    advance(billing, alice, days=30)
    assert deliver(billing, failed).status_code == 200
    return customer, sub


@pytest.mark.parametrize("paid_by", ["payFromWallet", "sweep"])
def test_a_period_paid_from_the_wallet_is_told_to_stripe_and_paid_once(
        billing, stripe_stub, paid_by):
    alice, admin = billing.user("alice"), billing.user("root", role="admin")
    customer, sub = past_due_with_a_wallet(billing, stripe_stub, alice)
    if paid_by == "payFromWallet":
        assert billing.gql(PAY, token=alice.token)["payFromWallet"] == {
            "__typename": "BillingSubscription", "status": "active"}
    else:
        advance(billing, alice, days=3, seconds=1)
        assert billing.runtime.billing.sweep() == []
    asked = [params for _, path, params in stripe_stub.requests
             if path == "/v1/invoices/in_2/pay"]
    assert asked == [{"paid_out_of_band": "true"}]  # no card charge, no more retries
    assert stripe_stub.objects["in_2"]["status"] == "paid"

    told = invoice_event("invoice.paid", "evt_paid_2", T + 33 * DAY + 5, invoice="in_2",
                         sub=sub, customer=customer, price=PRICE, amount=1000,
                         period=test_billing.NEXT_MONTH)
    assert deliver(billing, told).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == "active"
    history = billing.gql(test_billing.HISTORY, token=alice.token)["billingHistory"]["edges"]
    assert [(e["node"]["kind"], e["node"]["amount"]) for e in history] == [
        ("wallet_payment", "10.00"), ("top_up", "25.00"), ("invoice_paid", "10.00")]
    assert billing.gql("{ wallet { balance } }", token=alice.token)["wallet"] == [
        {"balance": "15.00"}]
    admin.token = billing.runtime.identity.login(admin.email, test_billing.PASSWORD).access_token
    billing.runtime.refresh()
    revenue = sum(Decimal(r["revenue"]) for month in ("2026-03", "2026-04")
                  for r in billing.gql(REVENUE, {"month": month}, admin.token)["revenue"])
    assert revenue == Decimal("20.00")  # in_1 by card, in_2 once (from the wallet)


def test_stripe_refusing_to_be_told_leaves_the_wallet_and_the_period_as_they_were(
        billing, stripe_stub):
    """Paid from the wallet only once Stripe has stopped charging the card for it: Stripe
    refusing to mark the invoice paid records nothing, and the user may try again."""
    alice = billing.user("alice")
    past_due_with_a_wallet(billing, stripe_stub, alice)
    stripe_stub.refusals["/v1/invoices/in_2/pay"] = "This invoice can not be paid now"
    refused = billing.gql(PAY, token=alice.token)["payFromWallet"]
    assert refused["code"] == "STRIPE_ERROR", refused
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == (
        "past_due")
    assert billing.gql("{ wallet { balance } }", token=alice.token)["wallet"] == [
        {"balance": "25.00"}]
    del stripe_stub.refusals["/v1/invoices/in_2/pay"]
    assert billing.gql(PAY, token=alice.token)["payFromWallet"]["status"] == "active"
    assert billing.gql("{ wallet { balance } }", token=alice.token)["wallet"] == [
        {"balance": "15.00"}]

"""Plans, subscriptions and Stripe, over HTTP on the real runtime: the official ``stripe``
library talks to a local Stripe stub (tests/stripe_stub.py), and webhooks are real event
files signed the way Stripe signs them and posted to ``/webhooks/stripe``."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from domain.errors import DomainError
from domain.plans import PlanTerms
from tests.api.conftest import CONFIG, CREATE_BOT, PASSWORD, Server, open_server
from tests.stripe_events import (
    body,
    charge_refunded,
    checkout_completed,
    invoice_event,
    payment_intent_event,
    subscription_event,
)
from tests.stripe_stub import API_KEY, WEBHOOK_SECRET, StripeStub, sign

pytestmark = pytest.mark.timeout(120)

PRICE = "price_tradetape_pro_test"
T = 1_772_366_400  # 2026-03-01T12:00Z, the servers' clock start (Stripe's seconds)
DAY = 86_400
MONTH = (T, T + 30 * DAY)
NEXT_MONTH = (T + 30 * DAY, T + 60 * DAY)


@pytest.fixture
def stripe_stub() -> Iterator[StripeStub]:
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def billing(tmp_path, monkeypatch, stripe_stub) -> Iterator[Server]:
    for name, value in {"TRADETAPE_STRIPE_API_KEY": API_KEY,
                        "TRADETAPE_STRIPE_API_BASE": stripe_stub.url,
                        "TRADETAPE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                        "TRADETAPE_STRIPE_PRICE_PRO": PRICE}.items():
        monkeypatch.setenv(name, value)
    runtime, clock = open_server(f"sqlite:///{tmp_path / 'billing.sqlite'}", monkeypatch)
    runtime.billing.catalogue.ensure_defaults()  # what runtime.start() does first
    try:
        with TestClient(create_app(runtime, manage_runtime=False)) as client:
            yield Server(runtime, client, clock)
    finally:
        runtime.stop()


def deliver(server: Server, event: dict, *, secret: str = WEBHOOK_SECRET,
            signature: str | None = "sign"):
    payload = body(event)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = sign(payload, secret) if signature == "sign" else signature
    return server.client.post("/webhooks/stripe", content=payload, headers=headers)


def advance(server: Server, account, **delta: float) -> None:
    """Let time pass on the server's clock; the user logs in again (tokens expired)."""
    server.clock.current += timedelta(**delta)
    account.token = server.runtime.identity.login(account.email, PASSWORD).access_token


def head(server: Server) -> int:
    return server.runtime.trading.recorder.max_notification_id() or 0


def try_create(server: Server, account, name: str) -> dict:
    return server.gql(CREATE_BOT, {"name": name, "config": CONFIG}, account.token)["createBot"]


SUBSCRIPTION = """{ subscription { plan { code version } status currentPeriodEnd
  cancelAtPeriodEnd graceEndsAt } entitlements { plan enforced maxBots } }"""
CHECKOUT = """mutation($plan: ID!) { startCheckout(planId: $plan) { __typename
  ... on CheckoutLink { url } ... on BillingErrors { code message } } }"""
BOTS = "{ bots(first: 20) { edges { node { name status } } } }"


def statuses(server: Server, account) -> dict[str, str]:
    edges = server.gql(BOTS, token=account.token)["bots"]["edges"]
    return {e["node"]["name"]: e["node"]["status"] for e in edges}


def checkout_pro(server: Server, stub: StripeStub, account) -> tuple[str, str]:
    """Alice starts checkout; Stripe's events arrive (invoice before checkout, 2025 shape).
    The Stripe customer and subscription ids."""
    url = server.gql(CHECKOUT, {"plan": "PRO"}, account.token)["startCheckout"]["url"]
    assert url.startswith("https://checkout.stripe.com/")
    [(_, _, customer_request)] = [r for r in stub.requests if r[1] == "/v1/customers"]
    customer = next(o["id"] for o in stub.objects.values() if o["object"] == "customer")
    assert customer_request["metadata"] == {"tradetape_user": account.user_id}
    sub = "sub_alice_pro"
    for event in (
        invoice_event("invoice.paid", "evt_paid_1", T + 5, invoice="in_1", sub=sub,
                      customer=customer, price=PRICE, amount=1000, period=MONTH,
                      shape="2025"),
        checkout_completed("evt_checkout", T + 3, user=account.user_id, customer=customer,
                           subscription=sub),
        subscription_event("customer.subscription.created", "evt_sub_created", T + 4,
                           sub=sub, customer=customer, price=PRICE, status="active",
                           period=MONTH),
    ):
        response = deliver(server, event)
        assert response.status_code == 200, response.text
    return customer, sub


def test_a_free_user_upgrades_to_pro_then_lapses_and_pays_again(billing, stripe_stub):
    alice = billing.user("alice")
    first = try_create(billing, alice, "bot-1")
    assert first["__typename"] == "Bot"
    refused = try_create(billing, alice, "bot-2")
    assert refused["code"] == "PLAN_LIMIT_REACHED", refused
    assert "maxBots 1 of plan FREE" in refused["errors"][0]["message"]
    assert "plan PRO allows 5" in refused["errors"][0]["message"]

    customer, sub = checkout_pro(billing, stripe_stub, alice)
    [(_, _, session)] = [r for r in stripe_stub.requests if r[1] == "/v1/checkout/sessions"]
    assert session["client_reference_id"] == alice.user_id
    assert session["customer"] == customer
    assert session["line_items"] == [{"price": PRICE, "quantity": "1"}]
    state = billing.gql(SUBSCRIPTION, token=alice.token)
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["plan"]["code"] == "PRO"
    assert state["entitlements"] == {"plan": "PRO", "enforced": True, "maxBots": 5}

    for n in range(2, 6):
        assert try_create(billing, alice, f"bot-{n}")["__typename"] == "Bot"
    assert try_create(billing, alice, "bot-6")["code"] == "PLAN_LIMIT_REACHED"
    for bot_id in _bot_ids(billing, alice):
        billing.start_bot(alice, bot_id)

    failed = invoice_event("invoice.payment_failed", "evt_failed_2", T + 30 * DAY + 10,
                           invoice="in_2", sub=sub, customer=customer, price=PRICE,
                           amount=1000, period=NEXT_MONTH)
    advance(billing, alice, days=30)
    assert deliver(billing, failed).status_code == 200
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert state["status"] == "past_due"
    grace_end = billing.clock.current + timedelta(days=3)
    assert state["graceEndsAt"] == grace_end.isoformat()

    advance(billing, alice, days=2)
    assert billing.runtime.billing.sweep() == []  # still in grace
    advance(billing, alice, days=1, seconds=1)
    before_expiry = billing.clock.current.isoformat()
    advance(billing, alice, seconds=1)
    assert billing.runtime.billing.sweep() == [alice.user_id]
    billing.runtime.refresh()
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == "expired"
    after_expiry = statuses(billing, alice)
    assert after_expiry == {"bot-1": "RUNNING", "bot-2": "PAUSED", "bot-3": "PAUSED",
                            "bot-4": "PAUSED", "bot-5": "PAUSED"}
    assert billing.gql(SUBSCRIPTION, token=alice.token)["entitlements"]["plan"] == "FREE"
    then = billing.gql("""query($t: DateTime) { subscription(asOf: $t) { status }
      entitlements(asOf: $t) { plan maxBots } }""", {"t": before_expiry}, alice.token)
    assert then == {"subscription": {"status": "past_due"},
                    "entitlements": {"plan": "PRO", "maxBots": 5}}

    paid = invoice_event("invoice.paid", "evt_paid_2", T + 33 * DAY + 100, invoice="in_2",
                         sub=sub, customer=customer, price=PRICE, amount=1000,
                         period=NEXT_MONTH)
    assert deliver(billing, paid).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == "active"
    assert set(statuses(billing, alice).values()) == {"RUNNING"}


def _bot_ids(server: Server, account) -> list[str]:
    data = server.gql("{ bots(first: 20) { edges { node { id name } } } }",
                      token=account.token)["bots"]["edges"]
    return [e["node"]["id"] for e in sorted(data, key=lambda e: e["node"]["name"])]


def test_a_bad_or_missing_signature_is_refused_and_nothing_is_recorded(billing):
    alice = billing.user("alice")
    event = checkout_completed("evt_x", T, user=alice.user_id, customer="cus_x",
                               subscription="sub_x")
    before = head(billing)
    for response in (deliver(billing, event, secret="whsec_not_ours"),
                     deliver(billing, event, signature=None),
                     deliver(billing, event, signature="t=1,v1=00")):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "SIGNATURE_INVALID"
    assert head(billing) == before


def test_an_event_delivered_twice_is_handled_once(billing, stripe_stub):
    alice = billing.user("alice")
    customer, sub = checkout_pro(billing, stripe_stub, alice)
    again = invoice_event("invoice.paid", "evt_paid_1", T + 5, invoice="in_1", sub=sub,
                          customer=customer, price=PRICE, amount=1000, period=MONTH,
                          shape="2025")
    before = head(billing)
    response = deliver(billing, again)
    assert response.status_code == 200 and response.json()["outcome"] == "duplicate"
    assert head(billing) == before


def test_an_unhandled_type_is_acknowledged_and_an_early_refund_waits_for_its_payment(
        billing):
    alice = billing.user("alice")
    customer = billing.runtime.billing.customer_of(alice.user_id, alice.email)
    other = subscription_event("customer.subscription.trial_will_end", "evt_trial", T,
                               sub="sub_a", customer=customer, price=PRICE,
                               status="trialing", period=MONTH)
    assert deliver(billing, other).json()["outcome"] == "ignored"
    early_refund = charge_refunded("evt_refund", T, charge="ch_unseen", customer=customer,
                                   intent="pi_unseen", amount=1000, refunded=1000,
                                   currency="USD")
    before = head(billing)
    response = deliver(billing, early_refund)
    assert response.status_code == 409  # not a fault of ours: no 5xx, yet Stripe retries
    assert response.json()["error"]["code"] == "STRIPE_EVENT_EARLY"
    assert head(billing) == before  # Stripe retries; the marker was not saved either



def test_a_failed_payment_before_its_subscription_waits_for_it(billing, stripe_stub):
    """Stripe sends invoice.payment_failed before customer.subscription.created: refused
    (409, nothing recorded) until the subscription is, then it makes it past due; a failure
    of a customer not ours is still acknowledged."""
    alice = billing.user("alice")
    url = billing.gql(CHECKOUT, {"plan": "PRO"}, alice.token)["startCheckout"]["url"]
    assert url.startswith("https://checkout.stripe.com/")
    customer = next(o["id"] for o in stripe_stub.objects.values() if o["object"] == "customer")
    failed = invoice_event("invoice.payment_failed", "evt_failed_early", T + 6,
                           invoice="in_1", sub="sub_alice_pro", customer=customer,
                           price=PRICE, amount=1000, period=MONTH, shape="2025")
    before = head(billing)
    response = deliver(billing, failed)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "STRIPE_EVENT_EARLY"
    assert head(billing) == before
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"] is None

    for event in (checkout_completed("evt_checkout", T + 3, user=alice.user_id,
                                     customer=customer, subscription="sub_alice_pro"),
                  subscription_event("customer.subscription.created", "evt_created", T + 4,
                                     sub="sub_alice_pro", customer=customer, price=PRICE,
                                     status="active", period=MONTH)):
        assert deliver(billing, event).status_code == 200
    assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]["status"] == "active"
    again = deliver(billing, failed)  # Stripe's next delivery
    assert again.status_code == 200 and again.json()["outcome"] == "handled"
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert state["status"] == "past_due"
    assert state["graceEndsAt"] == (billing.clock.current + timedelta(days=3)).isoformat()

    stranger = invoice_event("invoice.payment_failed", "evt_failed_other", T + 7,
                             invoice="in_x", sub="sub_other", customer="cus_not_ours",
                             price=PRICE, amount=1000, period=MONTH)
    assert deliver(billing, stranger).status_code == 200

def test_an_event_while_the_server_shuts_down_is_left_for_stripe_to_send_again(billing):
    alice = billing.user("alice")
    customer = billing.runtime.billing.customer_of(alice.user_id, alice.email)
    event = subscription_event("customer.subscription.created", "evt_late", T,
                               sub="sub_a", customer=customer, price=PRICE,
                               status="active", period=MONTH)
    before = head(billing)
    billing.runtime.accepting_commands = False  # what runtime.stop() does first
    response = deliver(billing, event)
    assert response.status_code == 503  # Stripe delivers it again, to a running server
    assert response.json()["error"]["code"] == "SHUTTING_DOWN"
    assert head(billing) == before


def signed(server: Server, payload: bytes):
    return server.client.post("/webhooks/stripe", content=payload, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload)})


def test_a_signed_event_not_as_stripe_sends_them_is_refused_by_name(billing, caplog):
    alice = billing.user("alice")
    customer = billing.runtime.billing.customer_of(alice.user_id, alice.email)
    created = subscription_event("customer.subscription.created", "evt_odd", T,
                                 sub="sub_a", customer=customer, price=PRICE,
                                 status="active", period=MONTH)
    no_items = copy.deepcopy(created)
    no_items["data"]["object"]["items"] = "price_tradetape_pro_test"
    late_start = copy.deepcopy(created)
    del late_start["data"]["object"]["current_period_start"]
    before = head(billing)
    caplog.set_level(logging.INFO, logger="tradetape")
    for payload in (b"[]", b"null", b'"evt_odd"', b"{not json", b"[" * 200_000,
                    body(no_items), body(late_start)):
        response = signed(billing, payload)
        assert response.status_code == 400, payload
        assert response.json()["error"]["code"] == "STRIPE_EVENT_MALFORMED"
    assert head(billing) == before
    assert billing.runtime.billing.subscription(alice.user_id) is None
    lines = [r for r in caplog.records if r.name.startswith("tradetape")]
    assert len(lines) == 7  # one a delivery, naming the code, without a traceback
    assert all("STRIPE_EVENT_MALFORMED" in r.getMessage() and r.exc_info is None
               for r in lines)
    assert signed(billing, body(created)).json()["outcome"] == "handled"  # as sent


def test_an_unknown_price_is_refused_by_name_and_recorded_once_a_plan_sells_it(
        billing, caplog):
    alice = billing.user("alice")
    customer = billing.runtime.billing.customer_of(alice.user_id, alice.email)
    unknown_price = subscription_event("customer.subscription.created", "evt_bad", T,
                                       sub="sub_a", customer=customer,
                                       price="price_nobody_sells", status="active",
                                       period=MONTH)
    before = head(billing)
    caplog.set_level(logging.INFO, logger="tradetape")
    for _ in range(2):  # Stripe's first delivery and a retry: refused alike
        response = deliver(billing, unknown_price)
        assert response.status_code == 422  # the plans' settings, not a fault of ours
        error = response.json()["error"]
        assert error["code"] == "STRIPE_PRICE_UNKNOWN"
        assert "price_nobody_sells" in error["message"]
    assert head(billing) == before  # no marker, no link, no subscription: nothing at all
    assert billing.runtime.billing.subscription(alice.user_id) is None
    lines = [r for r in caplog.records if r.name.startswith("tradetape")
             and "evt_bad" in r.getMessage()]
    assert len(lines) == 2  # one line a delivery, naming the code, without a traceback
    assert all("STRIPE_PRICE_UNKNOWN" in r.getMessage() and r.exc_info is None
               and not r.exc_text for r in lines)
    billing.runtime.billing.catalogue.update("PRO", "operator:test",
                                             stripe_price="price_nobody_sells")
    assert deliver(billing, unknown_price).json()["outcome"] == "handled"
    assert billing.runtime.billing.subscription(alice.user_id).status.value == "active"


def test_billing_off_keeps_the_server_limits(server):
    alice = server.user("alice")
    for n in range(3):
        server.create_bot(alice, f"bot-{n}")
    data = server.gql("{ entitlements { plan enforced } plans { code price } }",
                      token=alice.token)
    assert data["entitlements"] == {"plan": "FREE", "enforced": False}


TOP_UP = """mutation { topUp(amount: "500.00", currency: "THB", method: PROMPTPAY) {
  __typename ... on TopUp { paymentIntentId status amount currency qrCodeUrl qrCodeData }
  ... on BillingErrors { code } } }"""
HISTORY = """query($asOf: DateTime) { billingHistory(first: 10, asOf: $asOf) {
  edges { node { kind reference amount currency } } pageInfo { hasNextPage } } }"""


def test_a_promptpay_top_up_credits_the_wallet_and_pays_a_renewal(billing, stripe_stub):
    alice, admin = billing.user("alice"), billing.user("root", role="admin")
    billing.runtime.billing.catalogue.update("PRO", "operator:test", price=Decimal("300.00"),
                                             currency="THB")
    customer, sub = checkout_pro(billing, stripe_stub, alice)
    made = billing.gql(TOP_UP, token=alice.token)["topUp"]
    assert made["__typename"] == "TopUp", made
    assert made["status"] == "requires_action" and made["amount"] == "500.00"
    assert made["qrCodeUrl"].startswith("https://qr.stripe.com/")
    [(_, _, asked)] = [r for r in stripe_stub.requests if r[1] == "/v1/payment_intents"]
    assert asked["payment_method_types"] == ["promptpay"] and asked["currency"] == "thb"
    assert asked["amount"] == "50000" and asked["customer"] == customer
    wrong = billing.gql(TOP_UP.replace("THB", "USD"), token=alice.token)["topUp"]
    assert wrong == {"__typename": "BillingErrors", "code": "UNSUPPORTED_CURRENCY"}
    card = billing.gql(TOP_UP.replace("THB", "USD").replace("PROMPTPAY", "CARD")
                       .replace("500.00", "25.50"), token=alice.token)["topUp"]
    assert card["status"] == "requires_payment_method" and card["qrCodeUrl"] is None
    assert stripe_stub.requests[-1][2]["payment_method_types"] == ["card"]
    assert stripe_stub.requests[-1][2]["amount"] == "2550"
    for amount in ("0", "12.345"):
        refused = billing.gql(TOP_UP.replace("500.00", amount), token=alice.token)["topUp"]
        assert refused == {"__typename": "BillingErrors", "code": "INVALID_AMOUNT"}

    succeeded = payment_intent_event("payment_intent.succeeded", "evt_pi", T + 60,
                                     intent=made["paymentIntentId"], customer=customer,
                                     user=alice.user_id, amount=50000, currency="THB")
    assert deliver(billing, succeeded).status_code == 200
    assert billing.gql("{ wallet { currency balance } }", token=alice.token)["wallet"] == [
        {"currency": "THB", "balance": "500.00"}]
    before_renewal = billing.clock.current

    failed = invoice_event("invoice.payment_failed", "evt_failed", T + 30 * DAY, invoice="in_2",
                           sub=sub, customer=customer, price=PRICE, amount=30000,
                           period=NEXT_MONTH)
    advance(billing, alice, days=30)
    deliver(billing, failed)
    advance(billing, alice, days=3, seconds=1)
    assert billing.runtime.billing.sweep() == []  # paid from the wallet, not expired
    billing.runtime.refresh()
    state = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert state["status"] == "active"
    # the period paid ended 2026-03-31: a month on is April's last day
    assert state["currentPeriodEnd"] == "2026-04-30T12:00:00+00:00"
    assert billing.gql("{ wallet { balance } }", token=alice.token)["wallet"] == [
        {"balance": "200.00"}]
    history = billing.gql(HISTORY, token=alice.token)["billingHistory"]["edges"]
    assert [e["node"]["kind"] for e in history] == ["wallet_payment", "top_up",
                                                   "invoice_paid"]
    then = billing.gql(HISTORY, {"asOf": before_renewal.isoformat()}, alice.token)
    assert [e["node"]["kind"] for e in then["billingHistory"]["edges"]] == [
        "top_up", "invoice_paid"]
    admin.token = billing.runtime.identity.login(admin.email, PASSWORD).access_token
    revenue = billing.gql('{ revenue(month: "2026-03") { currency revenue topUps } }',
                          token=admin.token)["revenue"]
    assert revenue == [{"currency": "THB", "revenue": "0", "topUps": "500.00"},
                       {"currency": "USD", "revenue": "10.00", "topUps": "0"}]


def test_a_free_user_may_not_add_a_live_exchange_account(billing):
    alice = billing.user("alice")
    body = billing.gql('mutation { addExchangeAccount(input: {exchange: "binance", '
                       'sandbox: false, apiKey: "k", secret: "s"}) { __typename '
                       "... on AccountErrors { code message } } }",
                       token=alice.token)["addExchangeAccount"]
    assert body["code"] == "PLAN_LIMIT_REACHED", body
    assert "plan FREE does not include live_trading; plan PRO includes it" in body["message"]


CANCEL = """mutation { cancelSubscription { __typename
  ... on BillingSubscription { status cancelAtPeriodEnd } ... on BillingErrors { code } } }"""


def test_cancel_and_resume_at_period_end_the_portal_and_an_admin_refund(billing, stripe_stub):
    alice, admin = billing.user("alice"), billing.user("root", role="admin")
    assert billing.gql(CANCEL, token=alice.token)["cancelSubscription"] == {
        "__typename": "BillingErrors", "code": "NO_SUBSCRIPTION"}
    customer, sub = checkout_pro(billing, stripe_stub, alice)
    assert billing.gql(CANCEL, token=alice.token)["cancelSubscription"] == {
        "__typename": "BillingSubscription", "status": "active", "cancelAtPeriodEnd": True}
    resumed = billing.gql(CANCEL.replace("cancelSubscription", "resumeSubscription"),
                          token=alice.token)["resumeSubscription"]
    assert resumed["cancelAtPeriodEnd"] is False
    changes = [r[2] for r in stripe_stub.requests if r[1] == f"/v1/subscriptions/{sub}"]
    assert changes == [{"cancel_at_period_end": "true"}, {"cancel_at_period_end": "false"}]

    again = billing.gql(CHECKOUT, {"plan": "PRO"}, alice.token)["startCheckout"]
    assert again["code"] == "ALREADY_SUBSCRIBED"
    free = billing.gql(CHECKOUT, {"plan": "FREE"}, alice.token)["startCheckout"]
    assert free["code"] == "PLAN_NOT_FOR_SALE"
    nothing = billing.gql(CHECKOUT, {"plan": "GOLD"}, alice.token)["startCheckout"]
    assert nothing["code"] == "NOT_FOUND"
    portal = billing.gql("mutation { billingPortal { ... on CheckoutLink { url } } }",
                         token=alice.token)["billingPortal"]
    assert portal["url"].startswith("https://billing.stripe.com/")
    [(_, _, asked)] = [r for r in stripe_stub.requests
                       if r[1] == "/v1/billing_portal/sessions"]
    assert asked["customer"] == customer
    assert [r[1] for r in stripe_stub.requests].count("/v1/customers") == 1  # kept

    refund = """mutation($pi: String!, $amount: Decimal) { refundPayment(paymentIntentId: $pi,
      amount: $amount, currency: "USD") { __typename ... on RefundRequested { refundId }
      ... on BillingErrors { code } } }"""
    done = billing.gql(refund, {"pi": "pi_paid", "amount": "4.00"}, admin.token)
    assert done["refundPayment"]["refundId"].startswith("re_")
    assert stripe_stub.requests[-1][2] == {"payment_intent": "pi_paid", "amount": "400"}
    bad = billing.gql(refund, {"pi": "pi_paid", "amount": "4.001"}, admin.token)
    assert bad["refundPayment"] == {"__typename": "BillingErrors", "code": "INVALID_AMOUNT"}
    assert billing.post(refund, {"pi": "pi_paid"}, alice.token)["errors"][0][
        "extensions"]["code"] == "ADMIN_REQUIRED"


CREATE_WEBHOOK = """mutation { createWebhook(input: {name: "tv"}) { __typename
  ... on Webhook { id } ... on WebhookErrors { code message } } }"""


def test_create_webhook_asks_the_plan(billing, stripe_stub):
    alice = billing.user("alice")
    refused = billing.gql(CREATE_WEBHOOK, {}, alice.token)["createWebhook"]
    assert refused["code"] == "PLAN_LIMIT_REACHED", refused
    assert "plan PRO includes it" in refused["message"]
    assert billing.runtime.webhooks.list(alice.user_id) == []
    checkout_pro(billing, stripe_stub, alice)
    assert billing.gql(CREATE_WEBHOOK, {}, alice.token)["createWebhook"]["__typename"] == (
        "Webhook")


def test_webhook_limits_follow_the_plan(billing, stripe_stub):
    alice = billing.user("alice")
    limit = billing.runtime.billing.entitlements.webhook_limit
    with pytest.raises(DomainError) as refused:
        limit(alice.user_id, 0)
    assert refused.value.code == "PLAN_LIMIT_REACHED"
    assert "does not include webhooks; plan PRO includes it" in refused.value.message
    checkout_pro(billing, stripe_stub, alice)
    limit(alice.user_id, 9)  # the tenth of PRO's 10
    with pytest.raises(DomainError) as refused:
        limit(alice.user_id, 10)
    assert "maxWebhooks 10 of plan PRO reached" in refused.value.message


DEFINE = """mutation($input: PlanInput!) { definePlan(input: $input) { __typename
  ... on Plan { code price currency maxBots features version }
  ... on BillingErrors { code errors { field } } } }"""


def test_an_admin_defines_plans_and_everyone_sees_them(billing):
    admin = billing.user("root", role="admin")
    team = {"code": "TEAM", "name": "Team", "price": "30.00", "currency": "usd",
            "maxBots": 20, "maxLiveBots": 20, "maxWebhooks": 50,
            "features": ["webhooks", "live_trading"]}
    made = billing.gql(DEFINE, {"input": team}, admin.token)["definePlan"]
    assert made == {"__typename": "Plan", "code": "TEAM", "price": "30.00",
                    "currency": "USD", "maxBots": 20,
                    "features": ["live_trading", "webhooks"], "version": 1}
    again = billing.gql(DEFINE, {"input": {**team, "maxBots": 25}}, admin.token)["definePlan"]
    assert (again["maxBots"], again["version"]) == (25, 2)
    bad = billing.gql(DEFINE, {"input": {**team, "price": "30.001"}}, admin.token)
    assert bad["definePlan"] == {"__typename": "BillingErrors", "code": "INVALID_AMOUNT",
                                 "errors": [{"field": "price"}]}
    listed = billing.gql("{ plans { code maxBots } }")["plans"]  # no token needed
    assert listed == [{"code": "FREE", "maxBots": 1}, {"code": "PRO", "maxBots": 5},
                      {"code": "TEAM", "maxBots": 25}]


def test_a_subscription_moved_to_a_price_no_plan_sells_is_refused_until_one_does(
        billing, stripe_stub):
    alice = billing.user("alice")
    customer, sub = checkout_pro(billing, stripe_stub, alice)
    moved = subscription_event("customer.subscription.updated", "evt_moved", T + 10,
                               sub=sub, customer=customer, price="price_team_monthly",
                               status="active", period=MONTH)
    before = head(billing)
    response = deliver(billing, moved)  # Alice changed plan in Stripe's portal
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "STRIPE_PRICE_UNKNOWN"
    assert "price_team_monthly" in response.json()["error"]["message"]
    assert head(billing) == before  # not handled: Stripe delivers it again
    mine = billing.gql(SUBSCRIPTION, token=alice.token)
    assert mine["subscription"]["plan"]["code"] == "PRO"  # what was last recorded
    billing.runtime.billing.catalogue.create(PlanTerms(
        "TEAM", "Team", Decimal("30.00"), "USD", "month", "price_team_monthly",
        max_bots=20, max_live_bots=20, max_webhooks=50), "operator:test")
    assert deliver(billing, moved).json()["outcome"] == "handled"  # Stripe's next try
    mine = billing.gql(SUBSCRIPTION, token=alice.token)
    assert mine["subscription"]["plan"]["code"] == "TEAM"
    assert mine["entitlements"]["maxBots"] == 20


def test_a_renewal_at_the_price_its_plan_sold_before_keeps_that_plan(billing, stripe_stub):
    alice = billing.user("alice")
    customer, sub = checkout_pro(billing, stripe_stub, alice)
    billing.runtime.billing.catalogue.update("PRO", "operator:test",
                                             stripe_price="price_pro_2027")
    renewal = invoice_event("invoice.paid", "evt_renewed", T + 30 * DAY, invoice="in_2",
                            sub=sub, customer=customer, price=PRICE, amount=1000,
                            period=NEXT_MONTH, shape="2025")
    response = deliver(billing, renewal)  # Alice still pays the price she bought
    assert response.status_code == 200 and response.json()["outcome"] == "handled"
    mine = billing.gql(SUBSCRIPTION, token=alice.token)["subscription"]
    assert mine["plan"]["code"] == "PRO" and mine["status"] == "active"

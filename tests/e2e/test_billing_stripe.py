"""End to end on a running ``tradetape serve`` with billing on, its Stripe a local stub the
official library talks to over HTTP: a FREE user hits the bot limit, checks out PRO, the
signed webhooks activate the subscription and a fifth bot is created; a failed payment
makes it past due; the cron sweep (``tradetape subscriptions sweep``, grace 0 days) expires
it and the bots beyond FREE's limit pause; the next payment brings it back and they resume."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.conftest import (
    CONFIG,
    CREATE_BOT,
    TRADETAPE,
    new_user,
    server_env,
    start_bot,
    wait_for,
)
from tests.stripe_events import body, checkout_completed, invoice_event, subscription_event
from tests.stripe_stub import API_KEY, WEBHOOK_SECRET, StripeStub, sign

pytestmark = pytest.mark.timeout(180)
PRICE = "price_e2e_pro"
STATUS = "{ subscription { status graceEndsAt } }"
BOTS = "{ bots(first: 20) { edges { node { name status } } } }"


def post_event(server, event: dict) -> dict:
    payload = body(event)
    response = server.client.post("/webhooks/stripe", content=payload, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload)})
    assert response.status_code == 200, response.text
    return response.json()


def statuses(server, token: str) -> dict[str, str]:
    edges = server.gql(BOTS, token=token)["bots"]["edges"]
    return {e["node"]["name"]: e["node"]["status"] for e in edges}


def test_free_to_pro_past_due_expired_and_back(launch):
    stub = StripeStub().start()
    try:
        server = launch(env={"TRADETAPE_STRIPE_API_KEY": API_KEY,
                             "TRADETAPE_STRIPE_API_BASE": stub.url,
                             "TRADETAPE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                             "TRADETAPE_STRIPE_PRICE_PRO": PRICE,
                             "TRADETAPE_GRACE_DAYS": "0"})
        run_the_story(server, stub)
    finally:
        stub.stop()


def run_the_story(server, stub: StripeStub) -> None:
    token = new_user(server, "payer@example.com")
    user_id = server.gql("{ me { id } }", token=token)["me"]["id"]

    def create(name: str) -> dict:
        return server.gql(CREATE_BOT, {"name": name, "config": CONFIG}, token)["createBot"]

    assert create("bot-1")["__typename"] == "Bot"
    refused = create("bot-2")
    assert refused["code"] == "PLAN_LIMIT_REACHED", refused

    checkout = server.gql('mutation { startCheckout(planId: "PRO") { __typename '
                          "... on CheckoutLink { url } } }", token=token)["startCheckout"]
    assert checkout["url"].startswith("https://checkout.stripe.com/")
    customer = next(o["id"] for o in stub.objects.values() if o["object"] == "customer")
    now, sub = int(time.time()), "sub_e2e"
    month, later = (now, now + 30 * 86_400), (now + 30 * 86_400, now + 60 * 86_400)
    common = {"sub": sub, "customer": customer, "price": PRICE}
    post_event(server, checkout_completed("evt_e2e_1", now, user=user_id, customer=customer,
                                          subscription=sub))
    post_event(server, subscription_event("customer.subscription.created", "evt_e2e_2",
                                          now + 1, status="active", period=month, **common))
    post_event(server, invoice_event("invoice.paid", "evt_e2e_3", now + 2, invoice="in_e1",
                                     amount=1000, period=month, shape="2025", **common))
    assert server.gql(STATUS, token=token)["subscription"]["status"] == "active"

    for n in range(2, 6):
        made = create(f"bot-{n}")
        assert made["__typename"] == "Bot", made
    edges = server.gql("{ bots(first: 20) { edges { node { id name status } } } }",
                       token=token)["bots"]["edges"]
    for edge in edges:
        if edge["node"]["status"] == "CREATED" and edge["node"]["name"].startswith("bot-"):
            start_bot(server, token, edge["node"]["id"])

    post_event(server, invoice_event("invoice.payment_failed", "evt_e2e_4", now + 10,
                                     invoice="in_e2", amount=1000, period=later, **common))
    assert server.gql(STATUS, token=token)["subscription"]["status"] == "past_due"

    swept = subprocess.run([str(TRADETAPE), "subscriptions", "sweep", "--database",
                            server.database_url], capture_output=True, text=True,
                           env=server_env(), timeout=60, check=True)
    assert swept.stdout.startswith("1 subscription(s) expired"), swept.stdout
    assert server.gql(STATUS, token=token)["subscription"]["status"] == "expired"
    wait_for("the bots beyond FREE's limit paused", lambda: sorted(
        statuses(server, token).values()) == ["PAUSED"] * 4 + ["RUNNING"] * 1)

    post_event(server, invoice_event("invoice.paid", "evt_e2e_5", now + 20, invoice="in_e2",
                                     amount=1000, period=later, shape="2025", **common))
    assert server.gql(STATUS, token=token)["subscription"]["status"] == "active"
    wait_for("every bot running again", lambda: set(
        v for k, v in statuses(server, token).items() if k.startswith("bot-")) == {"RUNNING"})
    history = server.gql("{ billingHistory { edges { node { kind reference } } } }",
                         token=token)["billingHistory"]["edges"]
    assert [e["node"]["reference"] for e in history] == ["in_e2", "in_e1"]
    report = subprocess.run([str(TRADETAPE), "billing", "report", "--month",
                             time.strftime("%Y-%m", time.gmtime()), "--json", "--database",
                             server.database_url], capture_output=True, text=True,
                            env=server_env(), timeout=60, check=True)
    assert json.loads(report.stdout)["currencies"]["USD"]["revenue"] == "20.00"

"""A Stripe outage at the daily sweep does not expire a user whose wallet holds the price:
Stripe answering 500, then its port closed, is no refusal; the sweep keeps the subscription
past due, ``/health`` shows the user amber (``wallet_renewals_waiting``), and it asks again
with backoff. Once Stripe answers, the user is renewed from the wallet, paid once. An outage
that outlasts the bound (``OUTAGE_HOURS`` past the grace) ends as a refusal does:
expired, one WALLET_RENEWAL_REFUSED line.

The real ``stripe`` library talks to the local stub (its ``outage`` knob, ``stop``/``start``
at the same port); the sweep runs as the server's schedule runs it (``DailySweep``)."""

from __future__ import annotations

import logging

import pytest

from application.wallet_payments import OUTAGE_HOURS
from tests.api import test_billing
from tests.api.test_billing import SUBSCRIPTION, advance
from tests.api.test_billing_wallet_stripe import past_due_with_a_wallet

pytestmark = pytest.mark.timeout(120)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures
PAY_PATH = "/v1/invoices/in_2/pay"


def sweep(server) -> None:
    """The server's sweep schedule, due now or not (as its thread asks every second)."""
    server.runtime.billing.daily_sweep.run_if_due(server.clock.now())


def test_a_stripe_outage_at_the_sweep_keeps_a_paying_user_and_renews_once_it_is_back(
        billing, stripe_stub):
    alice = billing.user("alice")
    past_due_with_a_wallet(billing, stripe_stub, alice)
    advance(billing, alice, days=3, seconds=1)  # alice's grace is over: the sweep renews
    stripe_stub.outage = 500
    sweep(billing)
    assert _status(billing, alice) == "past_due"  # not expired: Stripe did not answer
    assert _balance(billing, alice) == "25.00"
    health = billing.admin_health()
    assert health["billing"]["status"] == "amber"
    assert list(health["billing"]["wallet_renewals_waiting"]) == [alice.user_id]
    anyone = billing.client.get("/health").json()["billing"]  # how many, not who
    assert (anyone["status"], anyone["wallet_renewals_waiting_count"]) == ("amber", 1)
    assert "wallet_renewals_waiting" not in anyone

    port = int(stripe_stub.url.rsplit(":", 1)[1])
    stripe_stub.stop()  # Stripe unreachable: the port closed
    advance(billing, alice, minutes=5)  # the backoff's next try is due
    sweep(billing)
    assert _status(billing, alice) == "past_due"
    assert billing.client.get("/health").json()["billing"]["status"] == "amber"

    stripe_stub.outage = None
    stripe_stub.start(port)  # Stripe is back
    advance(billing, alice, minutes=10)
    sweep(billing)
    assert _status(billing, alice) == "active"
    assert _balance(billing, alice) == "15.00"  # paid once, from the wallet
    sweep(billing)
    advance(billing, alice, hours=1)
    sweep(billing)
    assert _balance(billing, alice) == "15.00"
    paid = [r for r in stripe_stub.requests if r[1] == PAY_PATH]
    assert stripe_stub.objects["in_2"]["status"] == "paid" and paid
    assert "billing" not in billing.client.get("/health").json()


def test_an_outage_beyond_the_bound_expires_the_user_as_a_refusal(
        billing, stripe_stub, caplog):
    alice = billing.user("alice")
    past_due_with_a_wallet(billing, stripe_stub, alice)
    advance(billing, alice, days=3, seconds=1)
    stripe_stub.outage = 503
    sweep(billing)
    assert _status(billing, alice) == "past_due"
    advance(billing, alice, hours=OUTAGE_HOURS)
    with caplog.at_level(logging.ERROR, logger="tradetape.billing"):
        sweep(billing)
    assert _status(billing, alice) == "expired"
    assert _balance(billing, alice) == "25.00"  # nothing paid from it
    refused = [r for r in caplog.records if "WALLET_RENEWAL_REFUSED" in r.getMessage()]
    assert len(refused) == 1 and alice.user_id in refused[0].getMessage()
    health = billing.admin_health()["billing"]
    assert list(health["wallet_renewals_refused"]) == [alice.user_id]
    assert not health.get("wallet_renewals_waiting")


def _status(server, account) -> str:
    server.runtime.refresh()
    return server.gql(SUBSCRIPTION, token=account.token)["subscription"]["status"]


def _balance(server, account) -> str:
    return server.gql("{ wallet { balance } }", token=account.token)["wallet"][0]["balance"]

"""Nothing that waits on Stripe holds the trading loop: while Stripe is slow to answer the
daily sweep's renewal from a wallet, candles keep being stepped at their pace (each step
delivers its candle, a running bot trades on), and the renewal lands once Stripe answers.
And a Stripe that keeps refusing to be told the wallet pays does not keep a past-due user
alive for ever: the grace ends as for any unpaid period, one WALLET_RENEWAL_REFUSED line,
and ``/health`` shows the user to the operator.

The sweep runs as the server runs it, beside the loop (what ``runtime.schedules`` starts);
the real ``stripe`` library talks to the local stub, slowed by its ``delay`` knob."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tests.api import test_billing
from tests.api.test_billing import SUBSCRIPTION, advance
from tests.api.test_billing_wallet_stripe import PAY, past_due_with_a_wallet

pytestmark = pytest.mark.timeout(120)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures
STEPS = 5


def wait_for(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def beside_the_loop(server) -> None:
    """Start what the server runs beside its live loop (not the wallet monitor: no live
    accounts here), as ``Runtime.start`` does; ``Runtime.stop`` stops them."""
    for schedule in server.runtime.schedules:
        if schedule.name != "wallet-monitor":
            schedule.start()


def test_a_slow_stripe_delays_no_trading_step(billing, stripe_stub):
    alice, bob = billing.user("alice"), billing.user("bob")
    bob_bot = billing.create_bot(bob)
    billing.start_bot(bob, bob_bot)
    past_due_with_a_wallet(billing, stripe_stub, alice)
    advance(billing, alice, days=3, seconds=1)  # alice's grace is over: the sweep renews
    stripe_stub.delay = 60.0  # Stripe answers in a minute (or when released)
    beside_the_loop(billing)
    # (the sweep's request held by Stripe first: five quick steps could otherwise all end
    # before the sweep's thread even asks, and prove nothing)
    wait_for(lambda: stripe_stub.holding == 1, "the sweep's request held by Stripe")

    loop = billing.runtime.loop
    stepped = threading.Event()

    def trade() -> None:  # the live loop's thread: a candle a second
        for _ in range(STEPS):
            billing.step()
        stepped.set()

    threading.Thread(target=trade, daemon=True).start()
    try:
        # Every step done, each with its candle, while Stripe still holds the sweep's
        # request (today: the first step waits for Stripe, the whole minute).
        assert stepped.wait(30), "the trading steps waited for Stripe"
        assert stripe_stub.holding == 1
        assert (loop.health.steps, loop.health.candles) == (STEPS, STEPS)
        assert billing.runtime.trading.get_bot(_uuid(bob_bot)).open_deal_id is not None
    finally:
        stripe_stub.released.set()
    wait_for(lambda: any(path == "/v1/invoices/in_2/pay" for _, path, _ in
                         stripe_stub.requests) and stripe_stub.holding == 0
             and _status(billing, alice) == "active", "alice renewed from her wallet")
    assert billing.gql("{ wallet { balance } }", token=alice.token)["wallet"] == [
        {"balance": "15.00"}]
    billing.step()  # the loop goes on after it
    assert loop.health.last_error is None


def test_stripe_refusing_at_the_sweep_ends_the_grace_as_unpaid_and_health_says_it(
        billing, stripe_stub, caplog):
    alice = billing.user("alice")
    past_due_with_a_wallet(billing, stripe_stub, alice)
    stripe_stub.refusals["/v1/invoices/in_2/pay"] = "This invoice can not be paid now"
    advance(billing, alice, days=3, seconds=1)
    with caplog.at_level(logging.ERROR, logger="tradetape.billing"):
        assert billing.runtime.billing.sweep() == [alice.user_id]
    assert _status(billing, alice) == "expired"
    assert billing.gql("{ wallet { balance } }", token=alice.token)["wallet"] == [
        {"balance": "25.00"}]  # nothing paid from it
    refused = [r for r in caplog.records if "WALLET_RENEWAL_REFUSED" in r.getMessage()]
    assert len(refused) == 1 and alice.user_id in refused[0].getMessage()
    health = billing.admin_health()
    assert health["billing"]["status"] == "amber"
    assert list(health["billing"]["wallet_renewals_refused"]) == [alice.user_id]
    assert "STRIPE_ERROR" in health["billing"]["wallet_renewals_refused"][alice.user_id]

    # once Stripe accepts, the user pays the period from the wallet and it is active again
    del stripe_stub.refusals["/v1/invoices/in_2/pay"]
    paid = billing.gql(PAY, token=alice.token)["payFromWallet"]
    assert paid == {"__typename": "BillingSubscription", "status": "active"}
    assert "billing" not in billing.client.get("/health").json()


def _status(server, account) -> str:
    server.runtime.refresh()
    return server.gql(SUBSCRIPTION, token=account.token)["subscription"]["status"]


def _uuid(text: str):
    from uuid import UUID

    return UUID(text)

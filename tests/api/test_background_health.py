"""What an operator sees on ``/health`` of the tasks beside the trading loop, and of the
process itself.

The billing sweep meets an error outside the known codes (Stripe answers an open invoice
our code cannot read: no id): ``/health`` shows the task amber with the error's kind and
when it happened, never its message or a key; the log has one line, no traceback; the
sweep's next round that succeeds (Stripe answering properly again) turns it green. The
sweep runs as the server's schedule runs it (``runtime.schedules``, one round at a time);
the real ``stripe`` library talks to the local stub."""

from __future__ import annotations

import logging
import os

import pytest

from tests.api import test_billing
from tests.api.test_billing import SUBSCRIPTION, advance
from tests.api.test_billing_wallet_stripe import past_due_with_a_wallet
from tests.stripe_stub import API_KEY

pytestmark = pytest.mark.timeout(120)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures


def schedule(server, name: str):
    return next(s for s in server.runtime.schedules if s.name == name)


def test_an_unexpected_sweep_error_is_amber_on_health_until_the_sweep_next_succeeds(
        billing, stripe_stub, caplog):
    alice = billing.user("alice")
    past_due_with_a_wallet(billing, stripe_stub, alice)
    advance(billing, alice, days=3, seconds=1)  # alice's grace is over: the sweep renews
    invoice_id = stripe_stub.objects["in_2"].pop("id")  # an invoice our code cannot read
    sweep = schedule(billing, "billing-sweep")
    failed_at = billing.clock.now()
    with caplog.at_level(logging.INFO):
        sweep.run_once()
    answer = billing.client.get("/health")
    health = answer.json()
    assert health["background"]["status"] == "amber"  # (the test drives the loop: red)
    task = health["background"]["tasks"]["billing-sweep"]
    assert task["status"] == "amber"
    assert task["error"] == {"kind": "AttributeError", "code": None,
                             "since": failed_at.isoformat(), "last_at": failed_at.isoformat(),
                             "failures": 1}
    assert health["background"]["tasks"]["reconciliation"]["status"] == "green"
    assert API_KEY not in answer.text and "in_2" not in answer.text  # no key, no message
    lines = [r for r in caplog.records if "billing-sweep failed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "\n" not in lines[0].getMessage() and API_KEY not in lines[0].getMessage()

    advance(billing, alice, hours=1)
    sweep.run_once()  # not due yet (tomorrow): the failure stays shown
    assert billing.client.get("/health").json()["background"]["status"] == "amber"

    stripe_stub.objects["in_2"]["id"] = invoice_id  # Stripe answers properly again
    advance(billing, alice, days=1)
    sweep.run_once()
    health = billing.client.get("/health").json()
    task = health["background"]["tasks"]["billing-sweep"]
    assert (task["status"], task["error"]) == ("green", None)
    assert task["last_ok_at"] == billing.clock.now().isoformat()
    assert health["background"]["status"] == "green"
    assert _status(billing, alice) == "active"  # renewed from the wallet after all


def test_health_says_the_process_role_and_niceness(billing):
    health = billing.admin_health()
    assert health["process"] == {
        "status": "green", "role": "all", "pid": os.getpid(),
        "niceness": os.getpriority(os.PRIO_PROCESS, os.getpid()),
        "niceness_setting": None, "response_ms": health["process"]["response_ms"]}
    for part in ("event_store", "projections", "engine_loop"):  # still there, beside it
        assert health[part]["status"]
    anyone = billing.client.get("/health").json()["process"]  # where it runs: not said
    assert anyone == {key: value for key, value in health["process"].items()
                      if key not in ("pid", "response_ms")} | {
        "response_ms": anyone["response_ms"]}


def _status(server, account) -> str:
    server.runtime.refresh()
    return server.gql(SUBSCRIPTION, token=account.token)["subscription"]["status"]

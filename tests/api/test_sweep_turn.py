"""The billing sweep runs on the process that holds its turn (a session advisory lock on
PostgreSQL). A holder whose connection drops after its round began no longer holds it, and
another process may be sweeping by then: it confirms its turn before each subscription's
step and stops before writing anything more; the task shows why (``TASK_TURN_LOST``, amber)
until it goes on standby. The process that takes the turn over sweeps, and the user's
subscription expires once.

The schedule is the server's (``_beside_the_loop``); the sweep's events are in this test's
SQLite store, the turns on PostgreSQL, each process's on a connection of its own."""

from __future__ import annotations

import time

import psycopg
import pytest

from adapters.event_store.task_board import PostgresTaskLock
from application.bootstrap import _beside_the_loop
from application.settings import _connect_kwargs, parse_database_url
from application.task_health import tasks_health
from tests.api import test_billing
from tests.api.test_billing import SUBSCRIPTION, advance, deliver
from tests.stripe_events import invoice_event

pytestmark = pytest.mark.timeout(120)
stripe_stub, billing = test_billing.stripe_stub, test_billing.billing  # the same fixtures


def _terminate(database, lock: PostgresTaskLock) -> None:
    """The holder's connection dropped (its backend ended by the server)."""
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                      "'advisory' AND classid = %s AND objid = %s", lock.keys)
        while admin.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND "
                            "classid = %s AND objid = %s", lock.keys).fetchone():
            time.sleep(0.01)


def _expired_events(server) -> int:
    return sum(1 for e in server.runtime.trading.events.get(_sub_id(server))
               if type(e).__name__ == "Expired")


def _sub_id(server):
    return server.runtime.billing._subscription_ids()[0]


def test_a_holder_that_lost_its_turn_mid_sweep_writes_nothing_more(
        billing, stripe_stub, postgres_url):
    database = parse_database_url(postgres_url)
    alice = billing.user("alice")
    customer, sub = test_billing.checkout_pro(billing, stripe_stub, alice)
    failed = invoice_event("invoice.payment_failed", "evt_failed_2",
                           test_billing.T + 30 * test_billing.DAY + 10, invoice="in_2",
                           sub=sub, customer=customer, price=test_billing.PRICE,
                           amount=1000, period=test_billing.NEXT_MONTH)
    advance(billing, alice, days=30)
    assert deliver(billing, failed).status_code == 200
    advance(billing, alice, days=3, seconds=2)  # past the grace: the sweep expires it

    runtime = billing.runtime
    first = PostgresTaskLock(database, "billing-sweep")
    second = PostgresTaskLock(database, "billing-sweep", try_again=0)
    try:
        [_, sweeping] = _beside_the_loop(runtime.loop, runtime.reconciler, runtime.billing,
                                         sweep_lock=first)
        held = first.held

        def held_then_dropped() -> bool:  # the round began holding it; then the drop
            mine = held()
            _terminate(database, first)
            return mine

        first.held = held_then_dropped
        sweeping.run_once()
        runtime.refresh()
        assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"][
            "status"] == "past_due"  # nothing written after the turn was lost
        assert _expired_events(billing) == 0
        status, detail = tasks_health([sweeping])
        error = detail["tasks"]["billing-sweep"]["error"]
        assert status == "amber" and (error["kind"], error["code"]) == (
            "TurnLostError", "TASK_TURN_LOST")

        # another process took the turn meanwhile: it sweeps; the first goes on standby
        assert second.held() is True
        first.held = held
        first.try_again = 0
        sweeping.run_once()
        assert sweeping.health.standby is True and sweeping.health.error is None
        [_, taking_over] = _beside_the_loop(runtime.loop, runtime.reconciler,
                                            runtime.billing, sweep_lock=second)
        taking_over.run_once()
        assert taking_over.health.error is None and taking_over.health.rounds == 1
        runtime.refresh()
        assert billing.gql(SUBSCRIPTION, token=alice.token)["subscription"][
            "status"] == "expired"
        assert _expired_events(billing) == 1
    finally:
        first.release()
        second.release()

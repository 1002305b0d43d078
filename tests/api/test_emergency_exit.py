"""``closeDeals(ids)``, ``emergencyExit`` and the administrators' ``systemEmergencyStop`` on
the real runtime: deals sold at market with their reason, no resting order left, no bot
running, one correlation id over the exit's events (critical in the audit log), and an
exit asked while one runs done once."""

from __future__ import annotations

import threading
from uuid import UUID

import pytest

from domain.bots import BotStatus
from domain.orders import Order

pytestmark = pytest.mark.timeout(120)

CLOSE_DEALS = """mutation($ids: [ID!]!) { closeDeals(ids: $ids) {
  id closed code deal { id status closeReason } } }"""
EXIT = """mutation { emergencyExit(reason: "panic") { correlationId alreadyRunning
  botsStopped dealsClosed ordersCancelled problems } }"""
SYSTEM_STOP = """mutation { systemEmergencyStop(reason: "exchange hacked") {
  correlationId alreadyRunning botsStopped dealsClosed } }"""
AUDIT = """query($id: ID!) { auditLog(filter: {aggregateId: $id}, first: 100) {
  edges { node { eventType correlationId critical summary } } } }"""


def resting_orders(server, owner_id: str) -> list[Order]:
    trading, found = server.runtime.trading, []
    for notification in trading.recorder.select_notifications(start=1, limit=100_000):
        if notification.topic.endswith("Order.Submitted"):
            order = trading.load(notification.originator_id, Order)
            if order.owner_id == owner_id and order.is_open:
                found.append(order)
    return found


def test_close_deals_sells_each_open_deal_and_answers_per_id(server):
    alice, bob = server.user("alice"), server.user("bob")
    _, first = server.running_deal(alice, "one")
    _, second = server.running_deal(alice, "two")
    _, bobs = server.running_deal(bob, "bob's")
    outcomes = server.gql(CLOSE_DEALS, {"ids": [first, second, bobs, first, "nonsense"]},
                          alice.token)["closeDeals"]
    assert [(o["id"], o["closed"], o["code"]) for o in outcomes] == [
        (first, True, None), (second, True, None), (bobs, False, "NOT_FOUND"),
        (first, False, "DEAL_NOT_OPEN"), ("nonsense", False, "NOT_FOUND")]
    assert outcomes[0]["deal"] == {"id": first, "status": "CLOSED", "closeReason": "manual"}
    assert server.runtime.trading.get_deal(UUID(bobs)).status.value == "open"
    assert resting_orders(server, alice.user_id) == []


def test_emergency_exit_stops_every_bot_and_leaves_no_resting_order(server):
    alice, bob = server.user("alice"), server.user("bob")
    bot_one, deal_one = server.running_deal(alice, "one")
    bot_two, deal_two = server.running_deal(alice, "two")
    idle = server.create_bot(alice, "idle")  # created, never started
    bobs_bot, bobs_deal = server.running_deal(bob, "bob's")
    assert resting_orders(server, alice.user_id)  # the safety orders rest

    report = server.gql(EXIT, token=alice.token)["emergencyExit"]
    assert report["alreadyRunning"] is False and report["problems"] == []
    assert (report["botsStopped"], report["dealsClosed"]) == (3, 2)
    assert report["ordersCancelled"] >= 2
    trading = server.runtime.trading
    for bot_id in (bot_one, bot_two, idle):
        assert trading.get_bot(UUID(bot_id)).status is BotStatus.STOPPED
    for deal_id in (deal_one, deal_two):
        deal = trading.get_deal(UUID(deal_id))
        assert str(deal.close_reason) == "emergency_exit"
    assert resting_orders(server, alice.user_id) == []
    for _ in range(5):  # and nothing opens again
        server.step()
    assert trading.get_bot(UUID(bot_one)).open_deal_id is None
    # bob's bot trades on
    assert trading.get_bot(UUID(bobs_bot)).status is BotStatus.RUNNING
    assert trading.get_deal(UUID(bobs_deal)).status.value == "open"

    audit = server.gql(AUDIT, {"id": deal_one}, alice.token)["auditLog"]["edges"]
    closed = [e["node"] for e in audit if e["node"]["eventType"] == "Closed"]
    assert closed == [{**closed[0], "correlationId": report["correlationId"],
                       "critical": True}]


def test_an_exit_asked_while_one_runs_does_nothing_twice(server):
    alice = server.user("alice")
    server.running_deal(alice, "one")
    exits = server.runtime.emergency_exit
    inside, release = threading.Event(), threading.Event()

    class Slow:
        def exit_all(self, owner_id, cause):
            inside.set()
            release.wait(10)

    exits.participants.append(Slow())
    first = {}
    worker = threading.Thread(target=lambda: first.update(
        report=exits.run(UUID(alice.user_id), alice.user_id)))
    worker.start()
    assert inside.wait(10)
    # another process's exit finds the first under way (this process's lock aside)
    from application.emergency_exit import EmergencyExit

    other = EmergencyExit(exits.participants, trading=server.runtime.trading)
    second = other.run(UUID(alice.user_id), alice.user_id)
    release.set()
    worker.join(10)
    assert second.already_running is True
    assert second.correlation_id == first["report"].correlation_id
    assert (second.tally.bots_stopped, first["report"].tally.bots_stopped) == (0, 1)


def test_system_emergency_stop_is_for_admins_and_exits_everyone(server):
    alice, bob = server.user("alice"), server.user("bob")
    admin = server.user("root", role="admin")
    server.running_deal(alice, "one")
    server.running_deal(bob, "two")
    refused = server.post(SYSTEM_STOP, token=alice.token)
    assert refused["errors"][0]["extensions"]["code"] == "ADMIN_REQUIRED"
    report = server.gql(SYSTEM_STOP, token=admin.token)["systemEmergencyStop"]
    assert (report["botsStopped"], report["dealsClosed"]) == (2, 2)
    assert server.gql("{ systemStatus { halted reason } }")["systemStatus"] == {
        "halted": True, "reason": "exchange hacked"}
    for account in (alice, bob):
        assert resting_orders(server, account.user_id) == []


def test_a_failing_participant_is_reported_and_the_others_still_exit(server):
    alice = server.user("alice")
    bot_id, deal_id = server.running_deal(alice, "one")

    class BrokenPositions:
        def exit_all(self, owner_id, cause):
            raise RuntimeError("positions exchange unreachable")

    exits = server.runtime.emergency_exit
    exits.participants.insert(0, BrokenPositions())
    report = exits.run(UUID(alice.user_id), alice.user_id)
    assert report.tally.problems == ["BrokenPositions: positions exchange unreachable"]
    assert server.runtime.trading.get_bot(UUID(bot_id)).status is BotStatus.STOPPED
    assert str(server.runtime.trading.get_deal(UUID(deal_id)).close_reason) == "emergency_exit"
    again = exits.run(UUID(alice.user_id), alice.user_id)  # finished: a new exit may run
    assert again.already_running is False and again.correlation_id != report.correlation_id


def test_a_users_audit_log_shows_their_emergency_exit_as_critical(server):
    alice, bob = server.user("alice"), server.user("bob")
    server.running_deal(alice, "one")
    report = server.gql(EXIT, token=alice.token)["emergencyExit"]
    server.step(0)
    entries = [e["node"] for e in server.gql(
        "{ auditLog(first: 100) { edges { node { aggregateType eventType correlationId "
        "critical summary } } } }", token=alice.token)["auditLog"]["edges"]]
    exit_rows = [e for e in entries if e["aggregateType"] == "EmergencyExitRun"]
    assert [e["eventType"] for e in exit_rows] == ["Finished", "Started", "Installed"]
    assert all(e["critical"] for e in exit_rows[:2])
    assert exit_rows[1]["summary"] == "CRITICAL: EMERGENCY EXIT started: panic"
    assert {e["correlationId"] for e in exit_rows[:2]} == {report["correlationId"]}
    bobs = server.gql("{ auditLog(first: 100) { edges { node { aggregateType } } } }",
                      token=bob.token)["auditLog"]["edges"]
    assert "EmergencyExitRun" not in {e["node"]["aggregateType"] for e in bobs}

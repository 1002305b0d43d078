"""The read models for administrators, as the dashboard's admin page shows them:
``projections`` (position, lag, stuck), ``rebuildProjections`` in the background with its
progress on a subscription, and the same answers from the rebuilt tables as before; anyone
else is refused by name."""

from __future__ import annotations

import time

import pytest

from projections.registry import PROJECTIONS
from tests.api.test_queries import traded

pytestmark = pytest.mark.timeout(180)
LAG = "{ projections { name position lag stuck error } }"
REBUILD = """mutation($names: [String!]) { rebuildProjections(names: $names) { __typename
  ... on ProjectionRebuild { id status names }
  ... on AdminErrors { code errors { code field message } } } }"""
PROGRESS = """subscription($id: ID!) { projectionRebuildProgress(rebuildId: $id) {
  status eventsDone eventsTotal fraction rebuiltTo errorCode } }"""
SEEN = """query($id: ID!) { portfolio { realizedPnl fees balances { asset total } }
  bot(id: $id) { dealsClosed pnl { realizedPnl winRate } }
  deals(botId: $id, first: 50) { edges { node { id status realizedPnl } } }
  leaderboard(first: 10) { rank botId roi realizedPnl maxDrawdown } }"""


def test_an_administrator_sees_every_projection_caught_up(server):
    traded(server, minutes=60)
    root = server.user("root", role="admin")
    server.runtime.refresh()
    head = server.runtime.trading.recorder.max_notification_id()

    states = server.gql(LAG, token=root.token)["projections"]

    assert {s["name"] for s in states} == set(PROJECTIONS)
    assert all(s["lag"] == 0 and s["position"] == head and not s["stuck"] for s in states)


def test_a_rebuild_runs_in_the_background_and_the_answers_stay_the_same(server):
    alice, bot_id = traded(server)
    root = server.user("root", role="admin")
    before = server.gql(SEEN, {"id": bot_id}, alice.token)
    head = server.runtime.trading.recorder.max_notification_id()

    started = server.gql(REBUILD, {"names": ["frontend", "pnl", "leaderboard"]},
                         root.token)["rebuildProjections"]
    assert started["__typename"] == "ProjectionRebuild", started
    assert started["names"] == ["frontend", "pnl", "leaderboard"]
    seen = [message["data"]["projectionRebuildProgress"] for message in server.subscription(
        PROGRESS, {"id": started["id"]}, root.token)]

    assert seen[-1] == {"status": "completed", "eventsDone": head, "eventsTotal": head,
                        "fraction": "1", "rebuiltTo": head, "errorCode": None}
    server.runtime.refresh()
    assert server.gql(SEEN, {"id": bot_id}, alice.token) == before
    latest = server.gql("{ projectionRebuild { id status } }", token=root.token)
    assert latest["projectionRebuild"] == {"id": started["id"], "status": "completed"}


def test_all_are_rebuilt_when_none_is_named(server):
    traded(server, minutes=30)
    root = server.user("root", role="admin")
    started = server.gql(REBUILD, {}, root.token)["rebuildProjections"]
    assert started["names"] == list(PROJECTIONS)
    for _ in range(1200):
        state = server.gql("query($id: ID) { projectionRebuild(id: $id) { status } }",
                           {"id": started["id"]}, root.token)["projectionRebuild"]
        if state["status"] != "running" and state["status"] != "queued":
            break
        time.sleep(0.05)
    assert state == {"status": "completed"}


def test_anyone_else_is_refused_by_name(server):
    alice = server.user("alice")

    refused = server.gql(REBUILD, {"names": ["pnl"]}, alice.token)["rebuildProjections"]
    lag = server.post(LAG, token=alice.token)

    assert (refused["__typename"], refused["code"]) == ("AdminErrors", "ADMIN_REQUIRED")
    assert lag["data"] is None
    assert lag["errors"][0]["extensions"]["code"] == "ADMIN_REQUIRED"
    assert server.runtime.rebuilds.latest() is None  # nothing was started


def test_an_unknown_projection_is_named_and_nothing_starts(server):
    root = server.user("root", role="admin")

    refused = server.gql(REBUILD, {"names": ["pnl", "nosuch"]}, root.token)
    answer = refused["rebuildProjections"]

    assert (answer["code"], answer["errors"][0]["field"]) == ("UNKNOWN_PROJECTION", "names")
    assert "nosuch" in answer["errors"][0]["message"]
    assert server.runtime.rebuilds.latest() is None


def test_the_progress_of_a_rebuild_that_does_not_exist_is_not_found(server):
    root = server.user("root", role="admin")
    unknown = "5f0c5a48-0000-4000-8000-000000000000"
    [answer] = server.subscription(PROGRESS, {"id": unknown}, root.token)
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == f"no rebuild {unknown}"

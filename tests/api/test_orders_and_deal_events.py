"""The owner-wide ``dealEvents`` subscription (every deal and order event of all the
caller's bots on one websocket) and ``orders`` as a table of its own: newest first, filtered,
counted, paged forwards and backwards, private to its owner."""

from __future__ import annotations

import pytest

from tests.api.test_queries import traded
from tests.api.test_subscriptions import feed, subscribe, websocket  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(60)
ORDERS = """query($bot: ID, $deal: ID, $status: String, $first: Int, $after: String,
  $last: Int, $before: String) {
  orders(botId: $bot, dealId: $deal, status: $status, first: $first, after: $after,
         last: $last, before: $before) {
    totalCount edges { cursor node { id botId dealId pair side status createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


def test_orders_are_a_table_paged_both_ways_with_a_total(server):
    alice, bot_id = traded(server)
    everything = server.gql(ORDERS, {"first": 100}, alice.token)["orders"]
    total = everything["totalCount"]
    assert total == len(everything["edges"]) > 6
    ids = [e["node"]["id"] for e in everything["edges"]]
    times = [e["node"]["createdAt"] for e in everything["edges"]]
    assert times == sorted(times, reverse=True)  # newest first
    assert {e["node"]["botId"] for e in everything["edges"]} == {bot_id}

    forward, after = [], None
    while True:
        page = server.gql(ORDERS, {"first": 4, "after": after}, alice.token)["orders"]
        assert page["totalCount"] == total
        forward += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert forward == ids
    backward, before = [], None
    while True:
        page = server.gql(ORDERS, {"last": 4, "before": before}, alice.token)["orders"]
        backward = [e["node"]["id"] for e in page["edges"]] + backward
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert backward == ids

    filled = server.gql(ORDERS, {"status": "filled", "first": 100}, alice.token)["orders"]
    assert 0 < filled["totalCount"] < total
    assert {e["node"]["status"] for e in filled["edges"]} == {"filled"}
    deal_id = everything["edges"][0]["node"]["dealId"]
    of_deal = server.gql(ORDERS, {"deal": deal_id}, alice.token)["orders"]
    assert {e["node"]["dealId"] for e in of_deal["edges"]} == {deal_id}

    for size in (0, 101):
        error = server.post(ORDERS, {"last": size}, alice.token)["errors"][0]
        assert (error["extensions"]["code"], error["extensions"]["argument"]) == (
            "INVALID_PAGE_SIZE", "last")

    bob = server.user("bob")
    assert server.gql(ORDERS, {"bot": bot_id}, bob.token)["orders"] is None
    assert server.gql(ORDERS, {"deal": deal_id}, bob.token)["orders"] is None
    assert server.gql(ORDERS, {}, bob.token)["orders"]["totalCount"] == 0


def test_deal_events_of_every_bot_arrive_on_one_subscription(server, feed):  # noqa: F811
    alice, bob = server.user("alice"), server.user("bob")
    first = server.create_bot(alice, "first")
    second = server.create_bot(alice, "second")
    bobs = server.create_bot(bob, "bob's")
    for account, bot in ((alice, first), (alice, second), (bob, bobs)):
        server.start_bot(account, bot)
    with websocket(server, alice.token) as ws:
        subscribe(ws, "subscription { dealEvents { botId dealId type aggregateId } }")
        feed.joined.acquire(timeout=10)
        server.step()
        seen = []
        while {e["botId"] for e in seen} != {first, second}:
            message = ws.receive_json()
            seen.append(message["payload"]["data"]["dealEvents"])
    assert {e["type"].partition(".")[0] for e in seen} <= {"Deal", "Order"}
    assert any(e["type"] == "Deal.Opened" for e in seen)
    assert all(e["dealId"] for e in seen)  # each order event names its deal
    assert bobs not in {e["botId"] for e in seen}

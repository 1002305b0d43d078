"""Subscriptions over websockets (graphql-transport-ws): a bot's events and portfolio
updates arrive after a live step; another user's bot is "not found"; no token, no stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from application.change_feed import ChangeFeed

pytestmark = pytest.mark.timeout(60)
BOT_EVENTS = """subscription($id: ID!) { botEvents(botId: $id) {
    botId type aggregateId version at actor data } }"""
PORTFOLIO = "subscription { portfolioUpdates { dealsOpen fees balances { asset free locked } } }"


class WatchedFeed(ChangeFeed):
    """The runtime's change feed, telling the test when a subscriber has joined (so the
    market moves only once someone listens)."""

    def __init__(self, app):
        super().__init__(app)
        self.joined = threading.Semaphore(0)

    def subscribe(self, accepts):
        found = super().subscribe(accepts)
        self.joined.release()
        return found


@pytest.fixture
def feed(server) -> WatchedFeed:
    server.runtime.changes = WatchedFeed(server.runtime.trading)
    return server.runtime.changes


@contextmanager
def websocket(server, token: str | None) -> Iterator[Any]:
    with server.client.websocket_connect("/graphql",
                                         subprotocols=["graphql-transport-ws"]) as ws:
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        ws.send_json({"type": "connection_init", "payload": payload})
        assert ws.receive_json()["type"] == "connection_ack"
        yield ws


def subscribe(ws, query: str, variables: dict | None = None, id: str = "1") -> None:
    ws.send_json({"id": id, "type": "subscribe",
                  "payload": {"query": query, "variables": variables or {}}})


def test_bot_events_arrive_after_a_live_step(server, feed):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    server.start_bot(alice, bot_id)
    with websocket(server, alice.token) as ws:
        subscribe(ws, BOT_EVENTS, {"id": bot_id})
        assert feed.joined.acquire(timeout=10)
        appended = server.step()
        received = [ws.receive_json() for _ in range(appended)]
        ws.send_json({"id": "1", "type": "complete"})
    assert appended > 3 and {m["type"] for m in received} == {"next"}
    events = [m["payload"]["data"]["botEvents"] for m in received]
    kinds = [e["type"] for e in events]
    assert "Deal.Opened" in kinds
    assert {"Order.Submitted", "Order.Filled", "Deal.BuyFilled"} <= set(kinds)
    opened = next(e for e in events if e["type"] == "Deal.Opened")
    assert opened["botId"] == bot_id and opened["data"]["bot_id"] == bot_id
    assert opened["data"]["pair"] == "BTC/USDT" and opened["actor"] == "engine"
    deal = server.gql("query($id: ID!) { bot(id: $id) { openDeal { id } } }", {"id": bot_id},
                      alice.token)["bot"]["openDeal"]["id"]
    assert opened["aggregateId"] == deal


def test_bot_events_leave_out_other_bots(server, feed):
    alice, bob = server.user("alice"), server.user("bob")
    mine = server.create_bot(alice)
    server.start_bot(alice, mine)
    with websocket(server, alice.token) as ws:
        subscribe(ws, BOT_EVENTS, {"id": mine})
        assert feed.joined.acquire(timeout=10)
        server.running_deal(bob, "bob's bot")  # bob's events, then alice's in the same step
        server.step(60)
        message = ws.receive_json()
        ws.send_json({"id": "1", "type": "complete"})
    assert message["payload"]["data"]["botEvents"]["botId"] == mine


def test_portfolio_updates_start_with_the_portfolio_and_follow_its_changes(server, feed):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    server.start_bot(alice, bot_id)
    with websocket(server, alice.token) as ws:
        subscribe(ws, PORTFOLIO)
        first = ws.receive_json()["payload"]["data"]["portfolioUpdates"]
        server.step()
        second = ws.receive_json()["payload"]["data"]["portfolioUpdates"]
        ws.send_json({"id": "1", "type": "complete"})
    assert first["dealsOpen"] == 0 and second["dealsOpen"] == 1
    usdt = next(b for b in second["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["free"]) < 10000 and Decimal(usdt["locked"]) > 0
    assert any(b["asset"] == "BTC" for b in second["balances"])


def error_of(message: dict) -> dict:
    """A subscription's error, as an ``error`` message or a ``next`` carrying errors."""
    assert message["type"] in ("error", "next"), message
    payload = message["payload"]
    return payload[0] if message["type"] == "error" else payload["errors"][0]


def test_another_users_bot_is_not_found(server, feed):
    alice, bob = server.user("alice"), server.user("bob")
    bob_bot = server.create_bot(bob)
    with websocket(server, alice.token) as ws:
        subscribe(ws, BOT_EVENTS, {"id": bob_bot})
        error = error_of(ws.receive_json())
    assert error["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("query", [BOT_EVENTS, PORTFOLIO])
def test_no_token_no_subscription(server, feed, query):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    with websocket(server, None) as ws:
        subscribe(ws, query, {"id": bot_id})
        error = error_of(ws.receive_json())
    assert error["extensions"]["code"] == "AUTHENTICATION_REQUIRED"


def test_a_token_in_the_connection_header_works_too(server, feed):
    alice = server.user("alice")
    headers = {"Authorization": f"Bearer {alice.token}"}
    with server.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"],
                                         headers=headers) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        subscribe(ws, PORTFOLIO)
        message = ws.receive_json()
        ws.send_json({"id": "1", "type": "complete"})
    assert message["payload"]["data"]["portfolioUpdates"]["dealsOpen"] == 0

"""A newcomer's journey against the real server, over HTTP and graphql-transport-ws:
register → verify the email (token from the console mailer) → log in → create a paper bot →
start it → its events stream in → deals appear in ``bots``, ``deals``, ``deal`` and
``portfolio`` → stop it (selling the open deal), after which the books balance exactly."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.conftest import (
    CONFIG,
    DEAL,
    DEAL_WAIT,
    PASSWORD,
    create_bot,
    login,
    start_bot,
)

pytestmark = pytest.mark.timeout(150)
ROUNDING = Decimal("1e-18")  # see the end of the journey

REGISTER = """mutation($email: String!, $password: String!) {
  register(email: $email, password: $password, displayName: "E2E") {
    __typename
    ... on RegisterPayload { verificationSent user { id email emailVerified paperAccountId } }
    ... on InputErrors { code errors { code field message } }
  }
}"""
VERIFY = """mutation($token: String!) {
  verifyEmail(token: $token) {
    __typename ... on User { id emailVerified } ... on AuthError { code message }
  }
}"""
BOT_EVENTS = """subscription($botId: ID!) {
  botEvents(botId: $botId) { botId type aggregateId version at actor data }
}"""
BOTS = """{
  bots(first: 50) {
    edges { cursor node { id name status mode pair dealsOpened dealsClosed openDealId
                          openDeal { id status } pnl { realizedPnl dealsClosed } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CLOSED_DEALS = """query($botId: ID!) {
  deals(botId: $botId, status: CLOSED, first: 100) {
    edges { node { id botId status closeReason realizedPnl fees } }
    pageInfo { hasNextPage }
  }
}"""
PORTFOLIO = """{
  portfolio { realizedPnl unrealizedPnl fees dealsClosed dealsOpen winRate
              balances { asset free locked total } }
}"""
STOP_BOT = """mutation($id: ID!) {
  stopBot(id: $id, closeDeal: true) {
    __typename ... on Bot { id status openDealId dealsOpened dealsClosed }
    ... on BotErrors { code message }
  }
}"""


async def bot_events(ws_url: str, token: str, bot_id: str, timeout: float) -> list[dict]:
    """Subscribe to ``botEvents`` and collect them until a deal closes (then what arrives
    within half a second more), or fail after ``timeout`` seconds."""
    received: list[dict[str, Any]] = []
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {token}"}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": BOT_EVENTS, "variables": {"botId": bot_id}}}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(e["type"] == "Deal.Closed" for e in received):
            left = deadline - loop.time()
            assert left > 0, f"no Deal.Closed within {timeout:g} s: {received[-5:]}"
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
            assert message["type"] == "next" and message["id"] == "1", message
            received.append(message["payload"]["data"]["botEvents"])
        try:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                received.append(message["payload"]["data"]["botEvents"])
        except TimeoutError:
            pass
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
    return received


def test_register_verify_login_trade_and_stop(launch):
    server = launch()
    email = "newcomer@example.com"

    # Register: not verified yet, a token goes to the console mailer (the server's stderr).
    registered = server.gql(REGISTER, {"email": email, "password": PASSWORD})["register"]
    assert registered["__typename"] == "RegisterPayload", registered
    assert registered["verificationSent"] is True
    assert registered["user"]["email"] == email
    assert registered["user"]["emailVerified"] is False
    verified = server.gql(VERIFY, {"token": server.mail_token(email)})["verifyEmail"]
    assert verified == {"__typename": "User", "id": registered["user"]["id"],
                        "emailVerified": True}

    token = login(server, email)
    me = server.gql("{ me { id email emailVerified paperAccountId } }", token=token)["me"]
    assert me == {**registered["user"], "emailVerified": True}

    # A paper bot on the user's paper account, started.
    bot_id = create_bot(server, token)
    start_bot(server, token, bot_id)

    # Its events stream in over the websocket until a deal closes.
    events = asyncio.run(bot_events(server.ws_url, token, bot_id, DEAL_WAIT))
    kinds = {e["type"] for e in events}
    assert {"Order.Submitted", "Order.Filled", "Deal.BuyFilled", "Deal.Closed"} <= kinds, kinds
    assert all(e["botId"] == bot_id for e in events)
    seen: dict[str, int] = {}
    for event in events:  # each aggregate's events arrive once, in order
        assert event["version"] > seen.get(event["aggregateId"], 0), event
        seen[event["aggregateId"]] = event["version"]
    closed = next(e for e in events if e["type"] == "Deal.Closed")
    assert closed["actor"] == "engine"
    closed_deal = closed["aggregateId"]

    # The read side already shows what the stream announced (read models catch up before
    # subscribers hear of a step).
    bots = server.gql(BOTS, token=token)["bots"]
    assert bots["pageInfo"]["hasNextPage"] is False
    assert [edge["node"]["id"] for edge in bots["edges"]] == [bot_id]
    node = bots["edges"][0]["node"]
    assert node["status"] == "RUNNING" and node["mode"] == "PAPER"
    assert node["pair"] == CONFIG["pair"]
    assert node["dealsClosed"] >= 1 and node["dealsOpened"] >= node["dealsClosed"]
    assert node["pnl"]["dealsClosed"] >= 1
    assert Decimal(node["pnl"]["realizedPnl"]).is_finite()

    deals = server.gql(CLOSED_DEALS, {"botId": bot_id}, token)["deals"]["edges"]
    by_id = {edge["node"]["id"]: edge["node"] for edge in deals}
    assert closed_deal in by_id, (closed_deal, list(by_id))
    for deal in by_id.values():
        assert deal["botId"] == bot_id and deal["status"] == "CLOSED"
        assert deal["closeReason"] in ("take_profit", "stop_loss"), deal
        assert Decimal(deal["realizedPnl"]).is_finite()

    deal = server.gql(DEAL, {"id": closed_deal}, token)["deal"]
    assert deal["status"] == "CLOSED" and deal["realizedPnl"] is not None
    purposes = [(o["side"], o["purpose"]) for o in deal["orders"] if o["status"] == "filled"]
    assert ("buy", "base") in purposes and ("sell", deal["closeReason"]) in purposes, purposes
    assert [f["side"] for f in deal["fills"]][-1] == "sell"
    assert deal["safetyOrdersUsed"] == sum(1 for f in deal["fills"] if f["safetyOrder"])

    portfolio = server.gql(PORTFOLIO, token=token)["portfolio"]
    assert portfolio["dealsClosed"] >= 1
    assert Decimal(portfolio["realizedPnl"]).is_finite()

    # Stop, selling the open deal at market: the bot opens nothing more.
    stopped = server.gql(STOP_BOT, {"id": bot_id}, token)["stopBot"]
    assert stopped["__typename"] == "Bot" and stopped["status"] == "STOPPED", stopped
    assert stopped["openDealId"] is None
    assert stopped["dealsOpened"] == stopped["dealsClosed"]
    time.sleep(1.0)  # 50 more candles
    after = server.gql(BOTS, token=token)["bots"]["edges"][0]["node"]
    assert after["status"] == "STOPPED" and after["openDeal"] is None
    assert after["dealsOpened"] == stopped["dealsOpened"]

    # Nothing moves any more: the books balance. Decimal keeps 28 significant digits, so a
    # 10,000 USDT balance is rounded at 1e-24 on each fill: sums agree to 1e-18; a closed
    # deal holds exactly zero units.
    deals = server.gql(CLOSED_DEALS, {"botId": bot_id}, token)["deals"]
    assert deals["pageInfo"]["hasNextPage"] is False, "more than 100 deals: raise first"
    realized = [Decimal(edge["node"]["realizedPnl"]) for edge in deals["edges"]]
    portfolio = server.gql(PORTFOLIO, token=token)["portfolio"]
    assert portfolio["dealsClosed"] == len(realized) == after["dealsClosed"]
    assert portfolio["dealsOpen"] == 0
    assert Decimal(portfolio["unrealizedPnl"]) == 0
    assert abs(Decimal(portfolio["realizedPnl"]) - sum(realized)) < ROUNDING
    balances = {b["asset"]: b for b in portfolio["balances"]}
    assert Decimal(balances["USDT"]["locked"]) == 0
    assert abs(Decimal(balances["USDT"]["total"]) - 10000 - sum(realized)) < ROUNDING
    # Everything bought was sold; units are quote / price at 28 significant digits, so the
    # sums of fills may leave a remainder in the last digit.
    assert abs(Decimal(balances.get("BTC", {"total": "0"})["total"])) < ROUNDING

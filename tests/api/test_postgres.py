"""The API on PostgreSQL: the same server, the same queries (views read on a connection of
the GraphQL layer's own, in the test's schema)."""

from __future__ import annotations

import pytest

from tests.api.conftest import PASSWORD, served

pytestmark = pytest.mark.postgres


def test_login_create_start_and_read_back_on_postgres(postgres_url, monkeypatch):
    with served(postgres_url, monkeypatch) as server:
        server.user("alice")
        login = server.gql("""mutation($p: String!) { login(email: "alice@example.com",
            password: $p) { ... on AuthPayload { accessToken } } }""", {"p": PASSWORD})
        token = login["login"]["accessToken"]
        alice = server.accounts["alice"]
        alice.token = token
        bot_id, deal_id = server.running_deal(alice)
        data = server.gql("""{ bots { edges { node { id status openDeal { id orders {
            purpose status } } } } } portfolio { dealsOpen balances { asset } }
            auditLog(first: 5) { edges { node { eventType } } } }""", token=token)
    node = data["bots"]["edges"][0]["node"]
    assert node["id"] == bot_id and node["status"] == "RUNNING"
    assert node["openDeal"]["id"] == deal_id
    assert {"purpose": "base", "status": "filled"} in node["openDeal"]["orders"]
    assert data["portfolio"]["dealsOpen"] == 1
    assert {b["asset"] for b in data["portfolio"]["balances"]} == {"BTC", "USDT"}
    assert len(data["auditLog"]["edges"]) == 5


def test_a_position_with_an_oco_on_postgres(postgres_url, monkeypatch):
    from decimal import Decimal

    from tests.api.test_positions import exit_of, open_position
    from tests.positions_gql import PLACE_OCO, POSITIONS

    with served(postgres_url, monkeypatch) as server:
        alice = server.user("alice")
        position = open_position(server, alice, quoteAmount="100")
        price = Decimal(position["entryPrice"])
        server.gql(PLACE_OCO, {"input": {
            "positionId": position["id"], "takeProfitPrice": str(price * Decimal("1.0005")),
            "stopPrice": str(price / 2)}}, alice.token)
        for _ in range(120):
            server.step(1)
            if exit_of(server, alice, position["id"])["status"] != "ACTIVE":
                break
        group = exit_of(server, alice, position["id"])
        listed = server.gql(POSITIONS, {"status": "CLOSED"}, alice.token)["positions"]
    assert (group["status"], group["leg"]) == ("FILLED", "take_profit")
    assert [e["node"]["id"] for e in listed["edges"]] == [position["id"]]


def test_an_administrators_rebuild_on_postgres_answers_as_before(postgres_url, monkeypatch):
    from tests.api.test_admin_projections import PROGRESS, REBUILD, SEEN
    from tests.api.test_candle_fetches import ASKED, FETCH

    with served(postgres_url, monkeypatch) as server:
        alice, root = server.user("alice"), server.user("root", role="admin")
        bot_id, _ = server.running_deal(alice)
        for _ in range(4):
            server.step(30)
        before = server.gql(SEEN, {"id": bot_id}, alice.token)
        started = server.gql(REBUILD, {"names": ["frontend", "pnl"]},
                             root.token)["rebuildProjections"]
        seen = server.subscription(PROGRESS, {"id": started["id"]}, root.token)
        server.runtime.refresh()
        after = server.gql(SEEN, {"id": bot_id}, alice.token)
        # no candle directory and no SQLite file to put one beside: said by name
        fetch = server.gql(FETCH, {"input": ASKED}, alice.token)["fetchCandles"]
    assert seen[-1]["data"]["projectionRebuildProgress"]["status"] == "completed"
    assert after == before
    assert fetch["code"] == "CANDLE_DIR_NOT_SET"

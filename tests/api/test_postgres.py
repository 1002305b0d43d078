"""The API on PostgreSQL: the same server, the same queries (views read on a connection of
the GraphQL layer's own, in the test's schema)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from tests.api.conftest import PASSWORD, Server, open_server

pytestmark = pytest.mark.postgres


def test_login_create_start_and_read_back_on_postgres(postgres_url, monkeypatch):
    runtime, clock = open_server(postgres_url, monkeypatch)
    try:
        with TestClient(create_app(runtime, manage_runtime=False)) as client:
            server = Server(runtime, client, clock)
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
    finally:
        runtime.stop()
    node = data["bots"]["edges"][0]["node"]
    assert node["id"] == bot_id and node["status"] == "RUNNING"
    assert node["openDeal"]["id"] == deal_id
    assert {"purpose": "base", "status": "filled"} in node["openDeal"]["orders"]
    assert data["portfolio"]["dealsOpen"] == 1
    assert {b["asset"] for b in data["portfolio"]["balances"]} == {"BTC", "USDT"}
    assert len(data["auditLog"]["edges"]) == 5

"""Security finding 1 of issue 10, as a front end meets it: ``createBot(name: "a\\u0000b")``
is refused with a named code, every text input is bounded, an event with a NUL already in
the log breaks nothing, and a projection that cannot advance shows red on /health (naming
it, its position and its error) while logins and bot creation go on."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from tests.api.conftest import CREATE_BOT, PASSWORD, Server, open_server
from tests.projection_stubs import stored_bot_named

LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
  __typename ... on AuthPayload { accessToken } ... on AuthError { code } } }"""
REGISTER = """mutation($e: String!, $p: String!, $d: String) {
  register(email: $e, password: $p, displayName: $d) {
    __typename ... on InputErrors { code errors { code field message } } } }"""
STOP = """mutation($r: String!) { emergencyStop(reason: $r) {
  __typename ... on SystemErrors { code errors { code field } } } }"""
BOTS = "{ bots { edges { node { name } } } }"


@pytest.fixture(params=["sqlite", "postgres"])
def any_server(request, tmp_path, monkeypatch):
    url = (f"sqlite:///{tmp_path / 'server.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    runtime, clock = open_server(url, monkeypatch)
    try:
        with TestClient(create_app(runtime, manage_runtime=False)) as client:
            yield Server(runtime, client, clock)
    finally:
        runtime.stop()


def _create(server: Server, token: str, name: str) -> dict:
    config = {"pair": "BTC/USDT", "baseOrderQuote": "100", "safetyOrderQuote": "50",
              "maxSafetyOrders": 2, "priceDeviationPct": "0.2", "safetyVolumeScale": "1.5",
              "safetyStepScale": "1.2", "takeProfitPct": "0.15"}
    return _gql(server, CREATE_BOT, {"name": name, "config": config}, token)["createBot"]


def _gql(server: Server, query: str, variables: dict, token: str | None = None) -> dict:
    """As a client escaping every non-ASCII character sends it: JSON's ``\\ud800`` can
    carry a lone surrogate, which no UTF-8 body can."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = server.client.post("/graphql", headers=headers, content=json.dumps(
        {"query": query, "variables": variables}))
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


def test_create_bot_with_a_nul_in_its_name_is_refused_with_a_code(any_server):
    alice = any_server.user("alice")
    refused = _create(any_server, alice.token, "a\u0000b")
    assert refused["__typename"] == "BotErrors"
    assert refused["code"] == "TEXT_CONTROL_CHARACTER"
    assert refused["errors"][0]["field"] == "name"
    assert "U+0000" in refused["errors"][0]["message"]
    for name in ("evil\u202egnp.exe", "tab\there", "half \ud800 surrogate"):
        assert _create(any_server, alice.token, name)["errors"][0]["code"] in (
            "TEXT_CONTROL_CHARACTER", "TEXT_INVALID_CHARACTER"), name
    assert _create(any_server, alice.token, "zwj 👩\u200d💻 ok")["__typename"] == "Bot"
    names = [e["node"]["name"] for e in any_server.gql(BOTS, token=alice.token)["bots"]["edges"]]
    assert names == ["zwj 👩\u200d💻 ok"]  # nothing of the refused ones was recorded


def test_ids_and_filters_with_a_nul_are_refused_not_unexpected_errors(any_server):
    alice = any_server.user("alice")
    config = {"pair": "BTC/USDT", "baseOrderQuote": "100", "safetyOrderQuote": "50",
              "maxSafetyOrders": 0, "priceDeviationPct": "0.2", "safetyVolumeScale": "1",
              "safetyStepScale": "1", "takeProfitPct": "1"}
    query = """mutation($c: DcaConfigInput!, $a: ID) { createBot(name: "n", config: $c,
        exchangeAccountId: $a) { __typename ... on BotErrors { code errors { field } } } }"""
    refused = _gql(any_server, query, {"c": config, "a": "x\x00"}, alice.token)["createBot"]
    assert refused == {"__typename": "BotErrors", "code": "TEXT_CONTROL_CHARACTER",
                       "errors": [{"field": "exchangeAccountId"}]}
    audit = "query($a: String) { auditLog(filter: {actor: $a}) { edges { node { position } } } }"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {alice.token}"}
    body = any_server.client.post("/graphql", headers=headers, content=json.dumps(
        {"query": audit, "variables": {"a": "a\x00"}})).json()
    assert body["errors"][0]["extensions"] == {"code": "TEXT_CONTROL_CHARACTER",
                                               "field": "filter.actor"}


def test_every_text_input_of_register_and_emergency_stop_is_checked(server):
    def register(email: str, display: str | None, password: str = PASSWORD) -> dict:
        return _gql(server, REGISTER, {"e": email, "p": password, "d": display})["register"]

    long_name = register("long@example.com", "x" * 10_000)
    assert long_name["errors"][0] == {"code": "DISPLAY_NAME_TOO_LONG",
                                      "field": "displayName",
                                      "message": "a display name has at most 100 characters"}
    assert register("ctl@example.com", "bell\u0007")["errors"][0]["code"] == (
        "TEXT_CONTROL_CHARACTER")
    assert register("a\u0000b@example.com", None)["errors"][0] == {
        "code": "TEXT_CONTROL_CHARACTER", "field": "email",
        "message": "must not contain a control character (U+0000 at position 2)"}
    surrogate = register("sur@example.com", None, password="Correct-Horse-9\ud800")
    assert {"code": "TEXT_INVALID_CHARACTER", "field": "password"} in [
        {k: e[k] for k in ("code", "field")} for e in surrogate["errors"]]
    assert register("ok@example.com", "Ok name")["__typename"] == "RegisterPayload"

    admin = server.user("root", role="admin")
    stop = server.gql(STOP, {"r": "x" * 501}, admin.token)["emergencyStop"]
    assert stop["errors"] == [{"code": "TEXT_TOO_LONG", "field": "reason"}]
    assert server.runtime.trading.is_halted() is False


def test_a_stored_nul_breaks_neither_the_views_nor_a_restart(any_server, monkeypatch):
    any_server.user("alice")
    stored_bot_named(any_server.runtime.trading, "a\x00b")  # stored before names were checked
    login = any_server.gql(LOGIN, {"e": "alice@example.com", "p": PASSWORD})["login"]
    assert login["__typename"] == "AuthPayload"
    assert _create(any_server, login["accessToken"], "after")["__typename"] == "Bot"
    views = any_server.client.get("/health").json()["projections"]
    assert views["status"] == "green" and views["stuck"] == []  # (no loop thread in tests)
    assert set(views["lag"].values()) == {0}

    url = any_server.runtime.settings.database_url
    restarted, _ = open_server(url, monkeypatch)  # a restart reads the same log again
    try:
        restarted.start()
        assert restarted.read_models.problems() == []
        assert set(restarted.read_models.lag().values()) == {0}
    finally:
        restarted.stop()


def test_a_stuck_projection_shows_red_while_logins_and_bots_go_on(any_server):
    any_server.user("alice")
    store = any_server.runtime.read_models.store
    with store.transaction() as cur:  # the audit view's table is damaged
        store.execute(cur, f"DROP TABLE {store.q('audit_log')}")

    login = any_server.gql(LOGIN, {"e": "alice@example.com", "p": PASSWORD})["login"]
    assert login["__typename"] == "AuthPayload"
    token = login["accessToken"]
    assert _create(any_server, token, "still works")["__typename"] == "Bot"
    names = [e["node"]["name"] for e in any_server.gql(BOTS, token=token)["bots"]["edges"]]
    assert names == ["still works"]  # the bots view advanced past the audit's failure

    health = any_server.client.get("/health")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "red" and body["projections"]["status"] == "red"
    [stuck] = body["projections"]["stuck"]
    assert stuck["name"] == "audit"
    assert stuck["position"] < any_server.runtime.trading.recorder.max_notification_id()
    lag = body["projections"]["lag"]
    assert lag["audit"] > 0 and lag["frontend"] == 0 and lag["balances"] == 0
    [full] = any_server.admin_health()["projections"]["stuck"]  # an administrator: its line
    assert "audit_log" in full["error"] and "Traceback" not in full["error"]
    # anyone: the error's kind alone (UndefinedTable, SQLite's OperationalError), no text
    assert full["error"].startswith(f"{stuck['error']}: ") and " " not in stuck["error"]

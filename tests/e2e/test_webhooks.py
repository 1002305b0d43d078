"""End to end over HTTP on ``tradetape serve``: a TradingView-format alert starts and closes a
signal bot's deal; stale, replayed, unsigned and wrongly signed alerts change nothing; an
emergency exit leaves no resting order and no bot running."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import BOT, CONFIG, create_bot, new_user, start_bot, wait_for

ALERT = Path(__file__).parents[2] / "api" / "examples" / "tradingview" / "tradetape_alert.json"
CREATE_BOT = """mutation($name: String!, $config: DcaConfigInput!) {
  createBot(name: $name, config: $config) { __typename ... on Bot { id } } }"""
CREATE_HOOK = """mutation($bot: ID) { createWebhook(input: {name: "tradingview", botId: $bot}) {
  __typename ... on Webhook { id url secret enabled } } }"""
DEAL = """query($id: ID!) { deal(id: $id) { status closeReason
  orders { purpose status } } }"""
BOTS = "{ bots { edges { node { id status openDealId } } } }"
EXIT = "mutation { emergencyExit { correlationId botsStopped dealsClosed problems } }"


def timenow(shift: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=shift)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tradingview(secret: str, action: str, order_id: str, *, sent: str | None = None) -> bytes:
    """The README's alert message, substituted as TradingView does when the alert fires."""
    text = ALERT.read_text().replace("PASTE-YOUR-WEBHOOK-SECRET", secret)
    values = {"strategy.order.action": action, "strategy.order.id": order_id,
              "ticker": "BTCUSDT", "close": "91234.5", "timenow": sent or timenow()}
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text.encode()


def test_tradingview_alerts_start_and_close_a_deal_and_bad_ones_change_nothing(launch):
    server = launch()
    token = new_user(server, "signals@example.com")
    # targets far away: at this speed the deal closes only when the alert says so
    config = {**CONFIG, "startCondition": "signal", "takeProfitPct": "50", "stopLossPct": "50"}
    bot = server.gql(CREATE_BOT, {"name": "tv", "config": config}, token)["createBot"]
    start_bot(server, token, bot["id"])
    hook = server.gql(CREATE_HOOK, {"bot": bot["id"]}, token)["createWebhook"]
    assert hook["url"] == f"{server.base_url}/webhooks/{hook['id']}", hook

    def state():
        return server.gql(BOT, {"id": bot["id"]}, token)["bot"]

    def send(body: bytes, headers=None):
        return server.client.post(hook["url"], content=body, headers={
            "Content-Type": "text/plain", **(headers or {})})

    wait_for("some market time", lambda: server.health()["engine_loop"]["candles"] > 20)
    assert state()["dealsOpened"] == 0  # "signal": nothing opens by itself

    refused = {
        "stale": send(tradingview(hook["secret"], "buy", "a", sent=timenow(-120))),
        "unsigned": send(json.dumps({"action": "buy", "id": "b"}).encode()),
        "wrong secret": send(tradingview("not-the-secret", "buy", "c")),
        "wrong signature": send(json.dumps({"action": "buy", "id": "d"}).encode(),
                                {"X-Tradetape-Signature": "sha256=" + "ab" * 32}),
    }
    assert {name: (r.status_code, r.json()["code"]) for name, r in refused.items()} == {
        "stale": (422, "SIGNAL_STALE"), "unsigned": (401, "SIGNAL_UNSIGNED"),
        "wrong secret": (401, "SIGNAL_BAD_SECRET"),
        "wrong signature": (401, "SIGNAL_BAD_SIGNATURE")}
    assert state()["dealsOpened"] == 0

    buy = tradingview(hook["secret"], "buy", "Long")
    opened = send(buy)
    assert opened.status_code == 200 and opened.json()["status"] == "accepted", opened.text
    deal_id = opened.json()["deal_id"]
    wait_for("the deal in the views", lambda: state()["openDealId"] == deal_id, timeout=10)
    replayed = send(buy)
    assert (replayed.status_code, replayed.json()["status"]) == (200, "ignored")
    assert state()["dealsOpened"] == 1

    signed = json.dumps({"action": "sell", "id": "Exit-1", "timestamp": timenow()}).encode()
    signature = "sha256=" + hmac.new(hook["secret"].encode(), signed, hashlib.sha256).hexdigest()
    closed = send(signed, {"X-Tradetape-Signature": signature})
    assert closed.status_code == 200, closed.text
    deal = wait_for("the closed deal", lambda: (
        d := server.gql(DEAL, {"id": deal_id}, token)["deal"])["status"] == "CLOSED" and d,
        timeout=10)
    assert (deal["status"], deal["closeReason"]) == ("CLOSED", "signal")
    assert all(o["status"] in ("filled", "cancelled") for o in deal["orders"]), deal
    wait_for("no open deal in the views", lambda: state()["openDealId"] is None, timeout=10)
    assert hook["secret"] not in server.stdout + server.stderr  # never logged


def test_an_emergency_exit_leaves_no_resting_order_and_no_bot_running(launch):
    server = launch()
    token = new_user(server, "panic@example.com")
    bots = [create_bot(server, token, f"bot {n}") for n in range(2)]
    for bot_id in bots:
        start_bot(server, token, bot_id)
    deals = [wait_for("a deal", lambda b=b: server.gql(BOT, {"id": b}, token)["bot"][
        "openDealId"]) for b in bots]

    report = server.gql(EXIT, token=token)["emergencyExit"]
    assert report["botsStopped"] == 2 and report["problems"] == [], report
    rows = [e["node"] for e in server.gql(BOTS, token=token)["bots"]["edges"]]
    assert {(r["status"], r["openDealId"]) for r in rows} == {("STOPPED", None)}
    for deal_id in deals:
        deal = server.gql(DEAL, {"id": deal_id}, token)["deal"]
        assert deal["status"] == "CLOSED", deal
        assert all(o["status"] in ("filled", "cancelled") for o in deal["orders"]), deal

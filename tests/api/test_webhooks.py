"""Webhooks over GraphQL and ``POST /webhooks/{id}`` on the real runtime (the test moves the
clock and steps the market): TradingView-format alerts start and close a signal bot's
deals; stale, repeated, unsigned, wrongly signed, malformed and disabled ones change
nothing and are answered 4xx (or 200 "ignored" for a repeat) with a code; every signal is
listed on its webhook with its outcome."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

pytestmark = pytest.mark.timeout(120)

FORMATS = Path(__file__).parents[1] / "data" / "tradingview"
ALERT = Path(__file__).parents[2] / "api" / "examples" / "tradingview" / "tradetape_alert.json"
HOOK = "{ id url secret enabled botId signalsReceived }"
CREATE = f"""mutation($input: CreateWebhookInput!) {{
  createWebhook(input: $input) {{ __typename ... on Webhook {HOOK}
    ... on WebhookErrors {{ code errors {{ code field }} }} }} }}"""
SIGNALS = """query { webhooks { edges { node { id signalsReceived
  signals(last: 1000) { number action outcome code signalId dealId } } } } }"""
DEALS = """query($id: ID!) { deals(botId: $id) { edges { node { id status closeReason } } } }"""


def alert(template: Path, secret: str, **values: str) -> bytes:
    """An alert message as TradingView sends it: the template with the user's secret pasted
    in and TradingView's placeholders substituted."""
    text = template.read_text().replace("PASTE-YOUR-WEBHOOK-SECRET", secret)
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text.encode()


def signal_bot(server, account, name="signal scalper") -> str:
    bot_id = server.create_bot(account, name, startCondition="signal")
    server.start_bot(account, bot_id)
    return bot_id


def new_hook(server, account, bot_id=None, name="tv") -> dict:
    data = server.gql(CREATE, {"input": {"name": name, "botId": bot_id}},
                      account.token)["createWebhook"]
    assert data["__typename"] == "Webhook", data
    return data


def post(server, hook: dict, body: bytes, headers: dict | None = None):
    return server.client.post(f"/webhooks/{hook['id']}", content=body, headers=headers or {})


def now_text(server) -> str:
    return server.clock.current.strftime("%Y-%m-%dT%H:%M:%SZ")


def tv_alert(server, hook, action: str, order_id: str) -> bytes:
    return alert(ALERT, hook["secret"], **{
        "strategy.order.action": action, "strategy.order.id": order_id,
        "ticker": "BTCUSDT", "close": "87000.5", "timenow": now_text(server)})


def open_deal(server, bot_id: str):
    return server.runtime.trading.get_bot(UUID(bot_id)).open_deal_id


def test_a_signal_bot_opens_no_deal_by_itself_and_a_tradingview_alert_starts_and_closes_it(
        server):
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    assert hook["url"].endswith(f"/webhooks/{hook['id']}") and hook["enabled"]
    for _ in range(3):
        server.step()
    assert open_deal(server, bot_id) is None  # "signal": no deal at a close

    started = post(server, hook, tv_alert(server, hook, "buy", "Long"))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "accepted"
    deal_id = open_deal(server, bot_id)
    assert deal_id is not None and started.json()["deal_id"] == str(deal_id)

    server.step()
    closed = post(server, hook, tv_alert(server, hook, "sell", "Exit"))
    assert closed.status_code == 200, closed.text
    assert open_deal(server, bot_id) is None
    deal = server.runtime.trading.get_deal(deal_id)
    assert str(deal.close_reason) == "signal"
    signals = server.gql(SIGNALS, token=alice.token)["webhooks"]["edges"][0]["node"]
    t1 = (server.clock.current - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [(s["action"], s["outcome"], s["signalId"]) for s in signals["signals"]] == [
        ("sell", "done", f"Exit-{now_text(server)}"), ("buy", "done", f"Long-{t1}")]


def test_a_3commas_signal_bot_message_works_as_is_and_a_foreign_one_is_refused(server):
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    server.step()
    three_commas = (FORMATS / "3commas_signal_bot_strategy.json").read_text().replace(
        '"token"', json.dumps(hook["secret"]))
    for name, value in {"timenow": now_text(server), "close": "87000.5",
                        "exchange": "BINANCE", "ticker": "BTCUSDT",
                        "strategy.order.action": "buy"}.items():
        three_commas = three_commas.replace("{{" + name + "}}", value)
    answer = post(server, hook, three_commas.encode())
    assert answer.status_code == 200, answer.text
    assert open_deal(server, bot_id) is not None
    # TradingView's POST of another tool's format: a passphrase, no secret, no action
    foreign = (FORMATS / "hackingthemarkets_payload_filled.json").read_bytes()
    refused = post(server, hook, foreign)
    assert (refused.status_code, refused.json()["code"]) == (401, "SIGNAL_UNSIGNED")
    template = (FORMATS / "hackingthemarkets_payload_format.txt").read_bytes()
    refused = post(server, hook, template)  # not JSON until substituted (text/plain)
    assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_JSON")


def test_a_signed_body_is_accepted_and_a_repeated_id_is_ignored(server):
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice)  # for any of alice's bots: signals name theirs
    server.step()
    body = json.dumps({"action": "start_deal", "bot_id": bot_id, "id": "s-1"}).encode()
    sign = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    first = post(server, hook, body, {"X-Tradetape-Signature": sign})
    assert first.status_code == 200 and first.json()["status"] == "accepted", first.text
    deal_id = open_deal(server, bot_id)
    assert deal_id is not None
    again = post(server, hook, body, {"X-Tradetape-Signature": sign})
    assert again.status_code == 200
    assert again.json() == {"status": "ignored", "code": "SIGNAL_DUPLICATE"}
    assert open_deal(server, bot_id) == deal_id  # nothing traded twice
    server.step(0)  # the live loop's next step: the read models catch up
    deals = server.gql(DEALS, {"id": bot_id}, alice.token)["deals"]["edges"]
    assert len(deals) == 1


@pytest.mark.parametrize("case", ["stale", "unsigned", "bad secret", "bad signature",
                                  "bad json", "unknown action", "disabled", "other bot",
                                  "pair mismatch", "year 9999", "ahead"])
def test_a_refused_signal_changes_nothing_and_names_its_code(server, case):
    alice, bob = server.user("alice"), server.user("bob")
    bot_id = signal_bot(server, alice)
    bobs_bot = signal_bot(server, bob, "bob's")
    hook = new_hook(server, alice, None if case == "other bot" else bot_id)
    server.step()
    body = {"action": "start_deal", "secret": hook["secret"], "id": "x"}
    headers = {}
    expected = {"stale": (422, "SIGNAL_STALE"), "unsigned": (401, "SIGNAL_UNSIGNED"),
                "bad secret": (401, "SIGNAL_BAD_SECRET"),
                "bad signature": (401, "SIGNAL_BAD_SIGNATURE"),
                "bad json": (400, "INVALID_JSON"), "unknown action": (422, "UNKNOWN_ACTION"),
                "disabled": (403, "WEBHOOK_DISABLED"), "other bot": (422, "BOT_NOT_FOUND"),
                "pair mismatch": (422, "PAIR_MISMATCH"),
                # the last second a date has (was a 500: adding the lag overflowed)
                "year 9999": (422, "INVALID_SIGNAL"), "ahead": (422, "INVALID_SIGNAL")}[case]
    if case == "stale":
        body["timestamp"] = (server.clock.current - timedelta(seconds=61)).isoformat()
    elif case == "unsigned":
        del body["secret"]
    elif case == "bad secret":
        body["secret"] = hook["secret"][:-1] + ("A" if hook["secret"][-1] != "A" else "B")
    elif case == "bad signature":
        headers["X-Tradetape-Signature"] = "sha256=" + "0" * 64
    elif case == "unknown action":
        body["action"] = "short_everything"
    elif case == "disabled":
        done = server.gql("mutation($id: ID!) { setWebhookEnabled(id: $id, enabled: false) "
                          "{ ... on Webhook { enabled } } }", {"id": hook["id"]}, alice.token)
        assert done["setWebhookEnabled"] == {"enabled": False}
    elif case == "other bot":
        body["bot_id"] = bobs_bot
    elif case == "pair mismatch":
        body["pair"] = "BINANCE:ETHUSDT"
    elif case == "year 9999":
        body["timestamp"] = "9999-12-31T23:59:59Z"
    elif case == "ahead":  # would never go stale
        body["timestamp"] = (server.clock.current + timedelta(seconds=61)).isoformat()
    raw = b"{not json" if case == "bad json" else json.dumps(body).encode()
    answer = post(server, hook, raw, headers)
    assert (answer.status_code, answer.json()["code"]) == expected, answer.text
    assert open_deal(server, bot_id) is None and open_deal(server, bobs_bot) is None
    signals = server.gql(SIGNALS, token=alice.token)["webhooks"]["edges"][0]["node"]
    assert [(s["outcome"], s["code"]) for s in signals["signals"]] == [
        ("refused", expected[1])]


def test_a_rotated_secret_replaces_the_old_one_and_a_deleted_webhook_answers_404(server):
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    server.step()
    rotated = server.gql("mutation($id: ID!) { rotateWebhookSecret(id: $id) { ... on Webhook "
                         "{ secret } } }", {"id": hook["id"]}, alice.token)
    secret = rotated["rotateWebhookSecret"]["secret"]
    assert secret and secret != hook["secret"]
    old = post(server, hook, json.dumps({"action": "buy", "secret": hook["secret"]}).encode())
    assert (old.status_code, old.json()["code"]) == (401, "SIGNAL_BAD_SECRET")
    new = post(server, hook, json.dumps({"action": "buy", "secret": secret}).encode())
    assert new.status_code == 200, new.text
    server.gql("mutation($id: ID!) { deleteWebhook(id: $id) { __typename } }",
               {"id": hook["id"]}, alice.token)
    gone = post(server, hook, json.dumps({"action": "sell", "secret": secret}).encode())
    assert (gone.status_code, gone.json()["code"]) == (404, "WEBHOOK_NOT_FOUND")
    assert open_deal(server, bot_id) is not None  # the sell never reached it
    assert server.gql("{ webhooks { edges { node { id } } } }",
                      token=alice.token)["webhooks"]["edges"] == []


def test_another_users_webhook_is_not_found_and_the_secret_is_stored_sealed(server, tmp_path):
    alice, bob = server.user("alice"), server.user("bob")
    hook = new_hook(server, alice)
    refused = server.gql("mutation($id: ID!) { deleteWebhook(id: $id) { __typename "
                         "... on WebhookErrors { code } } }", {"id": hook["id"]}, bob.token)
    assert refused["deleteWebhook"] == {"__typename": "WebhookErrors", "code": "NOT_FOUND"}
    assert server.gql("{ webhooks { edges { node { id } } } }",
                      token=bob.token)["webhooks"]["edges"] == []
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("server.sqlite*"))
    assert hook["secret"].encode() not in stored


def test_a_webhook_limit_refuses_creation_with_its_code(server):
    from domain.errors import DomainError

    alice = server.user("alice")

    def one_webhook(owner, owned):
        if owned >= 1:
            raise DomainError("your plan allows 1 webhook: Pro allows 20",
                              code="PLAN_LIMIT_REACHED")

    server.runtime.webhooks.webhook_limit = one_webhook
    new_hook(server, alice)
    refused = server.gql(CREATE, {"input": {"name": "second"}}, alice.token)["createWebhook"]
    assert refused["code"] == "PLAN_LIMIT_REACHED"


def test_an_emergency_exit_signal_stops_the_owners_bots(server):
    alice = server.user("alice")
    bot_id, deal_id = server.running_deal(alice, "asap bot")
    hook = new_hook(server, alice)
    answer = post(server, hook, json.dumps({"action": "emergency_exit",
                                            "secret": hook["secret"]}).encode())
    assert answer.status_code == 200, answer.text
    trading = server.runtime.trading
    assert str(trading.get_bot(UUID(bot_id)).status) == "stopped"
    assert str(trading.get_deal(UUID(deal_id)).close_reason) == "emergency_exit"


def bought_and_sold(server, repeat_buy: bool = False):
    """Alice's signal bot bought and sold by two alerts (the buy sent twice if asked):
    (alice, bot id, webhook, the buy's body, the deal's id)."""
    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    server.step()
    buy = tv_alert(server, hook, "buy", "Long")
    bought = post(server, hook, buy).json()
    assert bought["status"] == "accepted", bought
    if repeat_buy:
        assert post(server, hook, buy).json()["status"] == "ignored"
    assert post(server, hook, tv_alert(server, hook, "sell", "Exit")).status_code == 200
    return alice, bot_id, hook, buy, bought["deal_id"]


@pytest.mark.postgres
def test_signals_on_postgres_open_close_and_ignore_a_repeat(postgres_url, monkeypatch):
    from tests.api.conftest import served

    with served(postgres_url, monkeypatch) as server:
        alice, bot_id, _, _, deal_id = bought_and_sold(server, repeat_buy=True)
        assert open_deal(server, bot_id) is None
        assert str(server.runtime.trading.get_deal(UUID(deal_id)).close_reason) == "signal"
        rows = server.gql(SIGNALS, token=alice.token)["webhooks"]["edges"][0]["node"]
        assert [s["outcome"] for s in rows["signals"]] == ["done", "ignored", "done"]


def test_a_signal_another_process_saved_first_is_ignored_and_trades_nothing_here(server):
    _, bot_id, hook, buy, _ = bought_and_sold(server)
    webhooks = server.runtime.webhooks
    seen = webhooks.is_claimed
    # the race: the other process's claim is not in the store yet when this one looks
    webhooks.is_claimed = lambda hook_id, signal_id, calls=[]: (
        calls.append(1) or len(calls) > 1) and seen(hook_id, signal_id)
    answer = post(server, hook, buy)
    assert answer.json() == {"status": "ignored", "code": "SIGNAL_DUPLICATE"}, answer.text
    assert open_deal(server, bot_id) is None  # not in the store ...
    engine = server.runtime.paper.engine_of(UUID(bot_id))
    assert engine is not None and engine.deal is None  # ... nor in this runner's memory
    server.step()
    assert open_deal(server, bot_id) is None


def test_a_signal_is_stored_and_answered_while_a_read_model_batch_holds_the_views_lock(
        server, tmp_path):
    """A projection's batch never holds the event store's write lock (the read models have a
    file of their own): a signal arriving in the middle of a long batch is accepted with its
    deal stored, and the read models show the deal once the batch is over."""
    from application.settings import parse_database_url
    from projections.store import SQLiteViewStore

    alice = server.user("alice")
    bot_id = signal_bot(server, alice)
    hook = new_hook(server, alice, bot_id)
    server.step()
    views = SQLiteViewStore(parse_database_url(f"sqlite:///{tmp_path / 'server.sqlite'}")
                            .views_path)
    try:
        with views.transaction():  # a slow batch: the views' write lock, held
            started = post(server, hook, tv_alert(server, hook, "buy", "Long"))
            assert started.status_code == 200, started.text
            assert started.json()["status"] == "accepted"
            deal_id = open_deal(server, bot_id)  # in the event store, the batch still running
            assert deal_id is not None and started.json()["deal_id"] == str(deal_id)
    finally:
        views.close()
    server.step()
    deals = server.gql(DEALS, {"id": bot_id}, alice.token)["deals"]["edges"]
    assert [d["node"]["id"] for d in deals] == [str(deal_id)]

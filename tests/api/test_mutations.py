"""Mutations: accounts (register, verify, login, refresh, logout), bot commands with their
typed errors, closing deals at market, and the administrators' emergency stop."""

from __future__ import annotations

from uuid import UUID

import pytest

from application.replay import read_log
from domain.bots import BotStatus
from domain.dca import DcaConfig
from domain.errors import DomainError
from tests.api.conftest import CONFIG, CREATE_BOT, PASSWORD
from tests.fakes import Mail

AUTH = """__typename ... on AuthPayload { accessToken refreshToken expiresAt user { id email
  emailVerified } } ... on AuthError { code message }"""
BOT = "__typename ... on Bot { id status configVersion openDealId } ... on BotErrors { code " \
      "message errors { code field rule } }"


def bot_mutation(server, name: str, bot_id: str, token: str, args: str = "") -> dict:
    return server.gql(f"mutation($id: ID!) {{ {name}(id: $id{args}) {{ {BOT} }} }}",
                      {"id": bot_id}, token)[name]


# --- accounts -------------------------------------------------------------------------------


def test_register_verify_login_refresh_and_logout(server, capsys):
    registered = server.gql("""mutation { register(email: "Carol@Example.com", password:
        "Correct-Horse-9", displayName: "Carol") { __typename ... on RegisterPayload {
        verificationSent user { email emailVerified displayName } } } }""")["register"]
    assert registered["user"] == {"email": "carol@example.com", "emailVerified": False,
                                  "displayName": "Carol"}
    token = Mail("carol@example.com", "", capsys.readouterr().err).token
    verified = server.gql("mutation($t: String!) { verifyEmail(token: $t) { __typename "
                          "... on User { emailVerified } } }", {"t": token})["verifyEmail"]
    assert verified == {"__typename": "User", "emailVerified": True}

    login = f"mutation($e: String!, $p: String!) {{ login(email: $e, password: $p) {{ {AUTH} }} }}"
    tokens = server.gql(login, {"e": "carol@example.com", "p": PASSWORD})["login"]
    assert tokens["__typename"] == "AuthPayload" and tokens["user"]["emailVerified"]
    me = server.gql("{ me { email } }", token=tokens["accessToken"])["me"]
    assert me["email"] == "carol@example.com"

    refresh = f"mutation($r: String!) {{ refresh(refreshToken: $r) {{ {AUTH} }} }}"
    renewed = server.gql(refresh, {"r": tokens["refreshToken"]})["refresh"]
    assert renewed["__typename"] == "AuthPayload"
    assert renewed["refreshToken"] != tokens["refreshToken"]
    reused = server.gql(refresh, {"r": tokens["refreshToken"]})["refresh"]
    assert reused["code"] == "SESSION_REVOKED"  # a copied refresh token ends the session

    again = server.gql(login, {"e": "carol@example.com", "p": PASSWORD})["login"]
    out = server.gql("mutation { logout { __typename ... on LogoutPayload { loggedOut } } }",
                     token=again["accessToken"])["logout"]
    assert out == {"__typename": "LogoutPayload", "loggedOut": True}
    body = server.post("{ me { id } }", token=again["accessToken"])
    assert body["errors"][0]["extensions"]["code"] == "SESSION_REVOKED"


def test_registration_errors_name_each_rule(server):
    query = """mutation($e: String!, $p: String!) { register(email: $e, password: $p) {
        __typename ... on InputErrors { code errors { code field } } } }"""
    weak = server.gql(query, {"e": "dan@example.com", "p": "short"})["register"]
    assert weak["__typename"] == "InputErrors"
    assert {e["field"] for e in weak["errors"]} == {"password"} and len(weak["errors"]) >= 2
    bad = server.gql(query, {"e": "not-an-email", "p": PASSWORD})["register"]
    assert bad["errors"][0]["field"] == "email"


def test_wrong_credentials_and_bad_tokens_are_typed_auth_errors(server):
    server.user("alice")
    login = f"mutation($e: String!, $p: String!) {{ login(email: $e, password: $p) {{ {AUTH} }} }}"
    for email, password in (("alice@example.com", "Wrong-Horse-99"),
                            ("nobody@example.com", PASSWORD)):
        failed = server.gql(login, {"e": email, "p": password})["login"]
        assert failed["code"] == "INVALID_CREDENTIALS"
    verify = server.gql('mutation { verifyEmail(token: "nonsense") { __typename ... on '
                        "AuthError { code } } }")["verifyEmail"]
    assert verify == {"__typename": "AuthError", "code": "VERIFICATION_TOKEN_INVALID"}
    logout = server.gql("mutation { logout { ... on AuthError { code } } }")["logout"]
    assert logout["code"] == "AUTHENTICATION_REQUIRED"


# --- creating and editing bots ---------------------------------------------------------------


def create(server, account, name="scalper", config=None, account_id=None) -> dict:
    return server.gql(CREATE_BOT, {"name": name, "config": config or CONFIG,
                                   "account": account_id}, account.token)["createBot"]


def test_create_bot_defaults_to_the_paper_account_and_reads_its_own_write(server):
    alice = server.user("alice")
    created = create(server, alice)
    assert created["__typename"] == "Bot" and created["status"] == "CREATED"
    bots = server.gql("{ bots { edges { node { id exchangeAccountId } } } }", token=alice.token)
    assert bots["bots"]["edges"] == [{"node": {"id": created["id"],
                                               "exchangeAccountId": alice.paper_account_id}}]


def test_an_invalid_configuration_names_each_field(server):
    alice = server.user("alice")
    refused = create(server, alice, config={**CONFIG, "takeProfitPct": "-1",
                                            "maxSafetyOrders": 500})
    assert refused["code"] == "INVALID_CONFIG"
    assert {(e["field"], e["rule"]) for e in refused["errors"]} == {
        ("takeProfitPct", "NOT_POSITIVE"), ("maxSafetyOrders", "OUT_OF_RANGE")}
    other_pair = create(server, alice, config={**CONFIG, "pair": "ETH/USDT"})
    assert [(e["code"], e["field"], e["rule"]) for e in other_pair["errors"]] == [
        ("INVALID_CONFIG", "pair", "PAIR_NOT_TRADED")]


def test_bot_names_are_unique_among_a_users_bots_that_are_not_stopped(server):
    alice, bob = server.user("alice"), server.user("bob")
    first = create(server, alice, "Scalper")
    duplicate = create(server, alice, " scalper ")
    assert duplicate["code"] == "BOT_NAME_DUPLICATE"
    assert duplicate["errors"][0]["field"] == "name"
    assert create(server, bob, "Scalper")["__typename"] == "Bot"  # another user's name
    bot_mutation(server, "stopBot", first["id"], alice.token)
    assert create(server, alice, "Scalper")["__typename"] == "Bot"
    blank = create(server, alice, "   ")
    assert blank["code"] == "INVALID_BOT_NAME"


def test_a_user_has_at_most_fifty_bots_that_are_not_stopped(server):
    from application.bot_roster import MAX_BOTS_PER_USER as BOT_LIMIT

    alice = server.user("alice")
    config = DcaConfig.from_mapping({k: v for k, v in {
        "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
        "max_safety_orders": 2, "price_deviation_pct": "0.2", "safety_volume_scale": "1.5",
        "safety_step_scale": "1.2", "take_profit_pct": "0.15"}.items()})
    made = [server.runtime.trading.create_bot(
        owner_id=alice.user_id, name=f"bot {n}", config=config,
        exchange_account_id=alice.paper_account_id) for n in range(BOT_LIMIT)]
    server.runtime.refresh()
    refused = create(server, alice, "one too many")
    assert refused["code"] == "BOT_LIMIT_REACHED"
    server.runtime.trading.stop_bot(made[0], actor=alice.user_id)
    server.runtime.refresh()
    assert create(server, alice, "one too many")["__typename"] == "Bot"


def test_the_bot_limit_is_the_servers_setting_and_both_refusals_are_told(server):
    import dataclasses

    from application.server_settings import ServerSettings

    assert ServerSettings.from_environ({"TRADETAPE_MAX_BOTS_PER_USER": "2"}
                                       ).max_bots_per_user == 2
    assert ServerSettings.from_environ({}).max_bots_per_user == 50
    for wrong in ("0", "two"):
        with pytest.raises(DomainError) as refused:
            ServerSettings.from_environ({"TRADETAPE_MAX_BOTS_PER_USER": wrong})
        assert refused.value.code == "INVALID_SETTING"
    runtime = server.runtime
    runtime.settings = dataclasses.replace(runtime.settings, max_bots_per_user=2)
    alice = server.user("alice")
    first = create(server, alice, "one")
    create(server, alice, "two")
    both = create(server, alice, "ONE")
    assert [e["code"] for e in both["errors"]] == ["BOT_LIMIT_REACHED", "BOT_NAME_DUPLICATE"]
    bot_mutation(server, "stopBot", first["id"], alice.token)
    assert create(server, alice, "ONE")["__typename"] == "Bot"


def test_an_unknown_exchange_account_is_missing(server):
    alice = server.user("alice")
    refused = create(server, alice, account_id="00000000-0000-0000-0000-000000000000")
    assert refused["code"] == "EXCHANGE_ACCOUNT_MISSING"
    assert create(server, alice, account_id=alice.paper_account_id)["__typename"] == "Bot"


def test_edit_bot_changes_its_configuration(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    edit = """mutation($id: ID!, $c: DcaConfigInput!) { editBot(id: $id, config: $c) {
        __typename ... on Bot { configVersion config { takeProfitPct cooldownSeconds } }
        ... on BotErrors { code errors { field } } } }"""
    edited = server.gql(edit, {"id": bot_id, "c": {**CONFIG, "takeProfitPct": "1.5",
                                                   "cooldownSeconds": 60}}, alice.token)
    assert edited["editBot"] == {"__typename": "Bot", "configVersion": 2,
                                 "config": {"takeProfitPct": "1.5", "cooldownSeconds": 60}}
    invalid = server.gql(edit, {"id": bot_id, "c": {**CONFIG, "safetyStepScale": "0"}},
                         alice.token)
    assert invalid["editBot"]["errors"] == [{"field": "safetyStepScale"}]


# --- running bots -----------------------------------------------------------------------------


def test_start_pause_and_restart_a_bot(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    assert bot_mutation(server, "startBot", bot_id, alice.token)["status"] == "RUNNING"
    server.step()
    assert bot_mutation(server, "pauseBot", bot_id, alice.token)["status"] == "PAUSED"
    again = bot_mutation(server, "pauseBot", bot_id, alice.token)
    assert again["code"] == "BOT_PAUSED"  # the transition is refused, typed
    assert bot_mutation(server, "startBot", bot_id, alice.token)["status"] == "RUNNING"


def test_live_trading_needs_a_verified_email_and_an_exchange_account(server):
    unverified, verified = server.user("una", verified=False), server.user("vera")
    bot_id = server.create_bot(unverified)
    live = bot_mutation(server, "startBot", bot_id, unverified.token, ", live: true")
    assert live["code"] == "EMAIL_NOT_VERIFIED"
    assert bot_mutation(server, "startBot", bot_id, unverified.token)["status"] == "RUNNING"
    other = server.create_bot(verified)
    live = bot_mutation(server, "startBot", other, verified.token, ", live: true")
    assert live["code"] == "LIVE_ACCOUNT_REQUIRED"  # a paper account's bot trades on paper


def test_close_deal_sells_at_market_and_the_bot_carries_on(server):
    alice = server.user("alice")
    bot_id, deal_id = server.running_deal(alice)
    close = """mutation($id: ID!) { closeDeal(id: $id) { __typename ... on Deal { id status
        closeReason realizedPnl orders { purpose type status } } ... on DealErrors { code } } }"""
    closed = server.gql(close, {"id": deal_id}, alice.token)["closeDeal"]
    assert closed["status"] == "CLOSED" and closed["closeReason"] == "manual"
    assert {"purpose": "manual", "type": "market", "status": "filled"} in closed["orders"]
    assert all(o["status"] != "accepted" for o in closed["orders"])  # safety orders cancelled
    again = server.gql(close, {"id": deal_id}, alice.token)["closeDeal"]
    assert again == {"__typename": "DealErrors", "code": "DEAL_NOT_OPEN"}
    server.step()
    assert server.runtime.trading.get_bot(UUID(bot_id)).open_deal_id not in (None,
                                                                             UUID(deal_id))


@pytest.mark.parametrize("close_deal", [True, False])
def test_stop_bot_optionally_closes_the_open_deal_at_market(server, close_deal):
    alice = server.user("alice")
    bot_id, deal_id = server.running_deal(alice)
    args = f", closeDeal: {str(close_deal).lower()}"
    stopped = bot_mutation(server, "stopBot", bot_id, alice.token, args)
    assert stopped["status"] == "STOPPED"
    deal = server.runtime.trading.get_deal(UUID(deal_id))
    assert (str(deal.status) == "closed") is close_deal
    assert (stopped["openDealId"] is None) is close_deal
    server.step(60)
    assert server.runtime.trading.get_bot(UUID(bot_id)).deals_opened == 1


def test_reset_bot_error_brings_a_failed_bot_back_paused(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice)
    server.start_bot(alice, bot_id)
    server.runtime.trading.fail_bot(UUID(bot_id), "exchange said no")
    server.runtime.refresh()
    bot = server.gql("query($id: ID!) { bot(id: $id) { status errorReason } }", {"id": bot_id},
                     alice.token)["bot"]
    assert bot == {"status": "ERROR", "errorReason": "exchange said no"}
    assert bot_mutation(server, "resetBotError", bot_id, alice.token)["status"] == "PAUSED"
    assert server.runtime.trading.get_bot(UUID(bot_id)).status is BotStatus.PAUSED


def test_emergency_stop_halts_every_bot_until_an_admin_resumes(server):
    admin, alice = server.user("root", role="admin"), server.user("alice")
    bot_id = server.create_bot(alice)
    server.start_bot(alice, bot_id)
    stop = """mutation { emergencyStop(reason: "exchange incident") { __typename
        ... on SystemStatus { halted reason } ... on SystemErrors { code } } }"""
    assert server.gql(stop, token=admin.token)["emergencyStop"] == {
        "__typename": "SystemStatus", "halted": True, "reason": "exchange incident"}
    assert server.gql(stop, token=admin.token)["emergencyStop"]["code"] == "ALREADY_HALTED"
    assert server.gql("{ systemStatus { halted reason } }")["systemStatus"]["halted"]
    assert server.step(60) == 0
    resume = 'mutation { emergencyResume(reason: "venue back") { ... on SystemStatus { halted } } }'
    assert server.gql(resume, token=admin.token)["emergencyResume"] == {"halted": False}
    assert server.step() > 0
    switch = server.runtime.trading.trading_switch()
    assert [(type(e).__name__, e.actor) for e in server.runtime.trading.events.get(switch.id)
            ][1:] == [("EmergencyStopped", admin.user_id), ("EmergencyResumed", admin.user_id)]
    assert list(server.runtime.trading.events.get(switch.id))[-1].reason == "venue back"


def test_mutations_are_refused_while_the_server_shuts_down(server):
    alice = server.user("alice")
    server.runtime.accepting_commands = False
    body = server.post(CREATE_BOT, {"name": "late", "config": CONFIG}, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "SHUTTING_DOWN"
    assert server.gql("{ bots { edges { node { id } } } }", token=alice.token)["bots"][
        "edges"] == []  # reads still work


def test_a_bot_whose_base_order_the_paper_account_cannot_pay_shows_why_it_stopped(server):
    alice = server.user("alice")
    # The paper account has 10,000: a bot needing more does not start (a funding plan, see
    # test_funding.py); one that fits starts, and then most of the money is withdrawn.
    bot_id = server.create_bot(alice, baseOrderQuote="9000")
    server.start_bot(alice, bot_id)
    withdrawn = server.gql(
        'mutation($a: ID!) { withdrawFromPaperAccount(accountId: $a, asset: "USDT", '
        'amount: "5000") { __typename } }', {"a": alice.paper_account_id}, alice.token)
    assert withdrawn["withdrawFromPaperAccount"]["__typename"] == "ExchangeAccount"
    for _ in range(3):
        server.step()

    bot = server.gql("query($id: ID!) { bot(id: $id) { status errorReason openDealId } }",
                     {"id": bot_id}, alice.token)["bot"]
    assert bot["status"] == "ERROR" and bot["openDealId"] is None
    assert "9000 USDT was refused: insufficient funds" in bot["errorReason"]
    refused = [n for n in read_log(server.runtime.trading)
               if n.topic.endswith("Order.Rejected")]
    assert len(refused) == 1  # tried once, not at every candle

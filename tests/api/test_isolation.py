"""Every query and mutation checks who is calling: another user's ids read as null or
"not found" (never "forbidden": nothing leaks whether they exist), and a missing, forged or
expired token is an authentication error naming why."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.api.test_schema import PUBLIC, root_fields

ANY_ID = str(uuid.uuid4())
CONFIG_LITERAL = ('{pair: "BTC/USDT", baseOrderQuote: "100", safetyOrderQuote: "50", '
                  'maxSafetyOrders: 2, priceDeviationPct: "0.2", safetyVolumeScale: "1.5", '
                  'safetyStepScale: "1.2", takeProfitPct: "0.15"}')
BOT_RESULT = "{ __typename ... on BotErrors { code errors { code field } } }"

# One operation per authenticated root field; ``$id`` is whatever the test passes.
AUTHENTICATED = {
    "me": "{ me { id } }",
    "changePassword": 'mutation { changePassword(currentPassword: "Correct-Horse-9", '
                      'newPassword: "Brand-New-Pass-42") { __typename } }',
    "bots": "{ bots { edges { node { id } } } }",
    "bot": "query($id: ID!) { bot(id: $id) { id } }",
    "deals": "query($id: ID!) { deals(botId: $id) { edges { node { id } } } }",
    "deal": "query($id: ID!) { deal(id: $id) { id } }",
    "portfolio": "{ portfolio { fees balances { accountId } } }",
    "pnlSeries": "query($id: ID!) { pnlSeries(botId: $id) { day } }",
    "auditLog": "query($id: ID!) { auditLog(filter: {aggregateId: $id}) { edges { node { "
                "aggregateId } } } }",
    "history": "query($id: ID!) { history(aggregateId: $id) { version } }",
    "createBot": f"mutation($id: ID!) {{ createBot(name: \"x\", config: {CONFIG_LITERAL}, "
                 f"exchangeAccountId: $id) {BOT_RESULT} }}",
    "editBot": f"mutation($id: ID!) {{ editBot(id: $id, config: {CONFIG_LITERAL}) "
               f"{BOT_RESULT} }}",
    "startBot": f"mutation($id: ID!) {{ startBot(id: $id) {BOT_RESULT} }}",
    "updateBot": f"mutation($id: ID!) {{ updateBot(id: $id, input: {{name: \"x\", config: "
                 f"{CONFIG_LITERAL}}}) {BOT_RESULT} }}",
    "renameBot": f"mutation($id: ID!) {{ renameBot(id: $id, name: \"x\") {BOT_RESULT} }}",
    "deleteBot": f"mutation($id: ID!) {{ deleteBot(id: $id, closeDeal: true) {BOT_RESULT} }}",
    "pauseBot": f"mutation($id: ID!) {{ pauseBot(id: $id) {BOT_RESULT} }}",
    "stopBot": f"mutation($id: ID!) {{ stopBot(id: $id, closeDeal: true) {BOT_RESULT} }}",
    "resetBotError": f"mutation($id: ID!) {{ resetBotError(id: $id) {BOT_RESULT} }}",
    "setLeaderboardListing": f"mutation($id: ID!) {{ setLeaderboardListing(id: $id, "
                             f"listed: true) {BOT_RESULT} }}",
    "closeDeal": "mutation($id: ID!) { closeDeal(id: $id) { __typename ... on DealErrors { "
                 "code } } }",
    "emergencyStop": "mutation { emergencyStop(reason: \"test\") { __typename } }",
    "emergencyResume": "mutation { emergencyResume { __typename } }",
    "users": "{ users { edges { node { id email } } } }",
    "blockUser": "mutation($id: ID!) { blockUser(id: $id) { __typename } }",
    "unblockUser": "mutation($id: ID!) { unblockUser(id: $id) { __typename } }",
    "exchangeAccounts": "{ exchangeAccounts { edges { node { id sandbox } } } }",
    "drift": "{ drift { edges { node { kind accountId } } } }",
    "addExchangeAccount": 'mutation { addExchangeAccount(input: {exchange: "binance", '
                          'sandbox: true, apiKey: "k", secret: "s"}) { __typename } }',
    "removeExchangeAccount": "mutation($id: ID!) { removeExchangeAccount(id: $id) { "
                             "__typename ... on AccountErrors { code } } }",
    "riskLimits": "{ riskLimits { maxOpenDeals openDeals } }",
    "setRiskLimits": "mutation { setRiskLimits(input: {maxOpenDeals: 3}) { __typename } }",
    "promotionCheck": "query($id: ID!) { promotionCheck(botId: $id) { passed } }",
    "promoteBot": f"mutation($id: ID!) {{ promoteBot(id: $id, exchangeAccountId: $id) "
                  f"{BOT_RESULT} }}",
    "walletRequirements": "{ walletRequirements { accountId required available } }",
    "fundingPlans": "{ fundingPlans { edges { node { id status } } } }",
    "fundingPlan": "query($id: ID!) { fundingPlan(id: $id) { id status } }",
    "cancelFundingPlan": "mutation($id: ID!) { cancelFundingPlan(id: $id) { __typename "
                         "... on FundingErrors { code } } }",
    "depositToPaperAccount": 'mutation($id: ID!) { depositToPaperAccount(accountId: $id, '
                             'asset: "USDT", amount: "5") { __typename '
                             '... on FundingErrors { code } } }',
    "withdrawFromPaperAccount": 'mutation($id: ID!) { withdrawFromPaperAccount(accountId: '
                                '$id, asset: "USDT", amount: "5") { __typename '
                                '... on FundingErrors { code } } }',
    "subscription": "{ subscription { status } }",
    "subscriptions": "{ subscriptions { status } }",
    "unsoldSubscriptions": "{ unsoldSubscriptions { status } }",
    "entitlements": "{ entitlements { plan } }",
    "billingHistory": "{ billingHistory { edges { node { reference } } } }",
    "definePlan": 'mutation { definePlan(input: {code: "X", name: "X", price: "1.00"}) { '
                  "__typename } }",
    "startCheckout": 'mutation { startCheckout(planId: "PRO") { __typename } }',
    "billingPortal": "mutation { billingPortal { __typename } }",
    "cancelSubscription": "mutation { cancelSubscription { __typename } }",
    "resumeSubscription": "mutation { resumeSubscription { __typename } }",
    "wallet": "{ wallet { currency } }",
    "revenue": '{ revenue(month: "2026-11") { currency } }',
    "topUp": 'mutation { topUp(amount: "500.00", currency: "THB", method: PROMPTPAY) { '
             "__typename } }",
    "payFromWallet": "mutation { payFromWallet { __typename } }",
    "refundPayment": 'mutation { refundPayment(paymentIntentId: "pi_1") { __typename } }',
    "positions": "{ positions { edges { node { id exits { level } } } } }",
    "position": "query($id: ID!) { position(id: $id) { id } }",
    "openPosition": 'mutation($id: ID!) { openPosition(input: {pair: "BTC/USDT", '
                    'quoteAmount: "10", exchangeAccountId: $id}) { __typename '
                    '... on PositionErrors { code } } }',
    "adoptPosition": 'mutation($id: ID!) { adoptPosition(input: {pair: "BTC/USDT", '
                     'amount: "1", exchangeAccountId: $id}) { __typename '
                     '... on PositionErrors { code } } }',
    "placeOco": 'mutation($id: ID!) { placeOco(input: {positionId: $id, takeProfitPrice: '
                '"2", stopPrice: "1"}) { __typename ... on PositionErrors { code } } }',
    "placeTrailingStop": 'mutation($id: ID!) { placeTrailingStop(input: {positionId: $id, '
                         'trailPercent: "1"}) { __typename ... on PositionErrors { code } } }',
    "cancelExit": "mutation($id: ID!) { cancelExit(id: $id) { __typename "
                  "... on PositionErrors { code } } }",
    "closePosition": "mutation($id: ID!) { closePosition(id: $id) { __typename "
                     "... on PositionErrors { code } } }",
    "webhooks": "{ webhooks { edges { node { id secret } } } }",
    "createWebhook": 'mutation { createWebhook(input: {name: "tv"}) { __typename } }',
    "setWebhookEnabled": "mutation($id: ID!) { setWebhookEnabled(id: $id, enabled: false) { "
                         "__typename ... on WebhookErrors { code } } }",
    "deleteWebhook": "mutation($id: ID!) { deleteWebhook(id: $id) { "
                     "__typename ... on WebhookErrors { code } } }",
    "rotateWebhookSecret": "mutation($id: ID!) { rotateWebhookSecret(id: $id) { "
                           "__typename ... on WebhookErrors { code } } }",
    "closeDeals": "mutation($id: ID!) { closeDeals(ids: [$id]) { id closed code } }",
    "emergencyExit": "mutation { emergencyExit { correlationId } }",
    "systemEmergencyStop": 'mutation { systemEmergencyStop(reason: "test") { correlationId } }',
    "equityCurve": 'query($id: ID!) { equityCurve(botId: $id, from: "2026-03-01T11:00:00Z", '
                   'to: "2026-03-01T13:00:00Z") { equity } }',
    "candles": '{ candles(pair: "BTC/USDT", from: "2026-03-01T11:00:00Z") { close } }',
    "candleFiles": "{ candleFiles }",
    "orders": "query($id: ID!) { orders(botId: $id) { totalCount edges { node { id } } } }",
    "markPrice": '{ markPrice(pair: "BTC/USDT") }',
    "backtestRun": "query($id: ID!) { backtestRun(id: $id) { id } }",
    "backtestRuns": "{ backtestRuns { edges { node { id } } } }",
    "compareBacktests": "query($id: ID!) { compareBacktests(ids: [$id]) { id } }",
    "runBacktest": f"mutation {{ runBacktest(input: {{config: {CONFIG_LITERAL}, candles: "
                   f"{{file: \"binance_BTC_USDT-1m-2025-11.csv\", from: "
                   f"\"2025-11-03T00:00:00Z\", to: \"2025-11-03T02:00:00Z\"}}}}) "
                   f"{{ __typename }} }}",
    "fetchCandles": 'mutation { fetchCandles(input: {exchange: "binance", pair: "BTC/USDT", '
                    'from: "2025-11-01T00:00:00Z", to: "2025-11-01T00:10:00Z", '
                    'sandbox: true}) { __typename } }',
    "candleFetch": "query($id: ID!) { candleFetch(id: $id) { id } }",
    "projections": "{ projections { name } }",
    "projectionRebuild": "query($id: ID!) { projectionRebuild(id: $id) { id } }",
    "rebuildProjections": "mutation { rebuildProjections { __typename } }",
}
# see test_subscriptions.py, test_charts.py, test_backtests.py,
# test_orders_and_deal_events.py
SUBSCRIPTIONS = {"botEvents", "portfolioUpdates", "prices", "backtestProgress", "dealEvents",
                 "candleFetchProgress", "projectionRebuildProgress"}


def variables(document: str, value: str) -> dict[str, str]:
    return {"id": value} if "$id" in document else {}


def test_every_root_field_is_covered_by_these_tests():
    names = {name for _, name, _ in root_fields()}
    assert names == set(AUTHENTICATED) | PUBLIC | SUBSCRIPTIONS


@pytest.mark.parametrize("field", sorted(AUTHENTICATED))
def test_without_a_token_every_authenticated_field_asks_to_log_in(server, field):
    document = AUTHENTICATED[field]
    for token in (None, "not-a-token", "at.forged.signature"):
        body = server.post(document, variables(document, ANY_ID), token)
        assert (body.get("data") or {}).get(field) is None, body
        assert body["errors"][0]["extensions"]["code"] == "AUTHENTICATION_REQUIRED"
        assert body["errors"][0]["path"] == [field]


@pytest.mark.parametrize("field", sorted(AUTHENTICATED))
def test_an_expired_token_is_refused_with_token_expired(server, field):
    alice = server.user("alice", role="admin")
    server.clock.current += timedelta(minutes=16)  # access tokens live 15 minutes
    document = AUTHENTICATED[field]
    body = server.post(document, variables(document, ANY_ID), alice.token)
    assert (body.get("data") or {}).get(field) is None, body
    assert body["errors"][0]["extensions"]["code"] == "TOKEN_EXPIRED"


def test_a_logged_out_or_blocked_users_token_stops_working(server):
    alice, bob = server.user("alice"), server.user("bob")
    admin = server.user("root", role="admin")
    server.runtime.identity.logout(alice.token)
    body = server.post(AUTHENTICATED["me"], token=alice.token)
    assert body["errors"][0]["extensions"]["code"] == "SESSION_REVOKED"
    server.runtime.identity.block(server.runtime.identity.find_user(bob.email).id,
                                  actor=admin.user_id)
    body = server.post(AUTHENTICATED["me"], token=bob.token)
    assert body["errors"][0]["extensions"]["code"] in ("ACCOUNT_BLOCKED", "SESSION_REVOKED")


def test_admin_fields_refuse_other_users(server):
    alice = server.user("alice")
    for field in ("definePlan", "revenue", "refundPayment", "systemEmergencyStop"):
        body = server.post(AUTHENTICATED[field], token=alice.token)
        assert body["errors"][0]["extensions"]["code"] == "ADMIN_REQUIRED"
    for field in ("emergencyStop", "emergencyResume"):  # their error union says so
        document = AUTHENTICATED[field].replace("__typename", "__typename ... on Error { code }")
        answer = server.gql(document, token=alice.token)[field]
        assert answer == {"__typename": "SystemErrors", "code": "ADMIN_REQUIRED"}
    for field in ("blockUser", "unblockUser"):
        document = AUTHENTICATED[field].replace("__typename", "__typename ... on Error { code }")
        answer = server.gql(document, {"id": alice.user_id}, alice.token)[field]
        assert answer == {"__typename": "AdminErrors", "code": "ADMIN_REQUIRED"}
    for field in ("users", "projections", "unsoldSubscriptions"):  # a top-level error
        body = server.post(AUTHENTICATED[field], token=alice.token)
        assert body["errors"][0]["extensions"]["code"] == "ADMIN_REQUIRED"
    assert not server.runtime.trading.is_halted()


# --- another user's ids ---------------------------------------------------------------------


@pytest.fixture
def bob_world(server):
    """Bob trades; Alice (a plain user) asks about Bob's things."""
    alice, bob = server.user("alice"), server.user("bob")
    bob_bot, bob_deal = server.running_deal(bob, "bob's bot")
    server.gql(AUTHENTICATED["setLeaderboardListing"], {"id": bob_bot}, bob.token)
    server.step(30)
    return alice, bob, bob_bot, bob_deal


NULL_FOR_OTHERS = {"bot": "bot", "deals": "bot", "deal": "deal", "pnlSeries": "bot",
                   "history": "bot", "promotionCheck": "bot", "equityCurve": "bot",
                   "orders": "bot"}
NOT_FOUND_FOR_OTHERS = {"editBot", "updateBot", "renameBot", "deleteBot", "startBot",
                        "pauseBot", "stopBot", "resetBotError",
                        "setLeaderboardListing", "closeDeal", "removeExchangeAccount",
                        "promoteBot", "closeDeals"}


@pytest.mark.parametrize("field", sorted(NULL_FOR_OTHERS))
def test_another_users_ids_read_as_null(server, bob_world, field):
    alice, bob, bob_bot, bob_deal = bob_world
    document = AUTHENTICATED[field]
    target = bob_deal if NULL_FOR_OTHERS[field] == "deal" else bob_bot
    assert server.gql(document, {"id": target}, alice.token)[field] is None
    assert server.gql(document, {"id": target}, bob.token)[field] is not None


def test_history_of_anything_of_another_user_is_null(server, bob_world):
    alice, bob, _, bob_deal = bob_world
    ids = [bob_deal, bob.user_id, bob.paper_account_id, ANY_ID, "not-an-id"]
    for target in ids:
        assert server.gql(AUTHENTICATED["history"], {"id": target},
                          alice.token)["history"] is None


@pytest.mark.parametrize("field", sorted(NOT_FOUND_FOR_OTHERS))
def test_another_users_ids_are_not_found_by_mutations(server, bob_world, field):
    alice, bob, bob_bot, bob_deal = bob_world
    document = AUTHENTICATED[field]
    target = (bob_deal if field in ("closeDeal", "closeDeals") else bob.paper_account_id
              if field == "removeExchangeAccount" else bob_bot)
    result = server.gql(document, {"id": target}, alice.token)[field]
    result = result[0] if isinstance(result, list) else result
    assert result["code"] == "NOT_FOUND", result
    bot = server.runtime.trading.get_bot(uuid.UUID(bob_bot))
    assert str(bot.status) == "running" and str(bot.open_deal_id) == bob_deal


def test_a_bot_cannot_be_created_on_another_users_account(server, bob_world):
    alice, bob, _, _ = bob_world
    result = server.gql(AUTHENTICATED["createBot"], {"id": bob.paper_account_id},
                        alice.token)["createBot"]
    assert result["code"] == "EXCHANGE_ACCOUNT_MISSING"
    assert result["errors"][0]["field"] == "exchangeAccountId"


def test_lists_show_only_the_callers_own_things(server, bob_world):
    alice, bob, bob_bot, bob_deal = bob_world
    mine = server.create_bot(alice, "alice's bot")
    data = server.gql("""{ bots { edges { node { id } } } deals { edges { node { id } } }
        portfolio { balances { accountId } } auditLog(first: 100) { edges { node {
        aggregateId } } } }""", token=alice.token)
    assert [e["node"]["id"] for e in data["bots"]["edges"]] == [mine]
    assert data["deals"]["edges"] == []
    assert {b["accountId"] for b in data["portfolio"]["balances"]} == {alice.paper_account_id}
    seen = {e["node"]["aggregateId"] for e in data["auditLog"]["edges"]}
    assert seen and not seen & {bob_bot, bob_deal, bob.user_id, bob.paper_account_id}
    assert {mine, alice.user_id, alice.paper_account_id} <= seen
    accounts = server.gql(AUTHENTICATED["exchangeAccounts"], token=alice.token)
    assert [e["node"]["id"] for e in accounts["exchangeAccounts"]["edges"]] == [
        alice.paper_account_id]
    only_bob = server.gql(AUTHENTICATED["auditLog"], {"id": bob_bot}, alice.token)
    assert only_bob["auditLog"]["edges"] == []


def test_an_admin_sees_another_users_bot_deal_and_history(server, bob_world):
    _, _, bob_bot, bob_deal = bob_world
    admin = server.user("root", role="admin")
    for field, target in (("bot", bob_bot), ("deal", bob_deal), ("history", bob_deal)):
        assert server.gql(AUTHENTICATED[field], {"id": target}, admin.token)[field]
    entries = server.gql(AUTHENTICATED["auditLog"], {"id": bob_bot}, admin.token)
    assert entries["auditLog"]["edges"]
    # ... but cannot change it: mutations are the owner's.
    result = server.gql(AUTHENTICATED["pauseBot"], {"id": bob_bot}, admin.token)
    assert result["pauseBot"]["code"] == "NOT_FOUND"


def test_another_users_position_and_exit_are_null_or_not_found(server):
    alice, bob = server.user("alice"), server.user("bob")
    server.step(1)
    position = server.gql(AUTHENTICATED["openPosition"], {"id": bob.paper_account_id},
                          bob.token)["openPosition"]
    position_id = server.gql("{ positions { edges { node { id } } } }", token=bob.token)[
        "positions"]["edges"][0]["node"]["id"]
    exit_id = server.gql('mutation($id: ID!) { placeTrailingStop(input: {positionId: $id, '
                         'trailPercent: "1"}) { ... on PositionExit { id } } }',
                         {"id": position_id}, bob.token)["placeTrailingStop"]["id"]
    assert position["__typename"] == "Position"
    assert server.gql(AUTHENTICATED["position"], {"id": position_id}, alice.token)[
        "position"] is None
    for field in ("openPosition", "adoptPosition", "placeOco", "placeTrailingStop",
                  "closePosition", "cancelExit"):
        target = {"openPosition": bob.paper_account_id, "adoptPosition": bob.paper_account_id,
                  "cancelExit": exit_id}.get(field, position_id)
        result = server.gql(AUTHENTICATED[field], {"id": target}, alice.token)[field]
        assert result["code"] == "NOT_FOUND", (field, result)
    assert server.gql(AUTHENTICATED["position"], {"id": position_id}, bob.token)[
        "position"] == {"id": position_id}

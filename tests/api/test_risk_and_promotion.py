"""Risk limits and the promotion gate over GraphQL, on the real runtime."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.server import create_app
from application.bootstrap import open_runtime
from application.server_settings import ServerSettings
from domain.accounts import AccountKind
from domain.promotion import PromotionRules
from tests.api.conftest import T0, Server

LIMITS = """{ riskLimits { maxOpenDeals maxPositionQuote maxExposureQuote maxDailyLossQuote
  openDeals exposureQuote day dayRealizedPnl pausedUntil } }"""
SET_LIMITS = """mutation($input: RiskLimitsInput!) { setRiskLimits(input: $input) {
  __typename
  ... on RiskLimits { maxOpenDeals maxPositionQuote maxExposureQuote maxDailyLossQuote }
  ... on RiskLimitsErrors { code errors { code field message } } } }"""
BOT = "query($id: ID!) { bot(id: $id) { status mode exchangeAccountId warning dealsOpened } }"
CHECK = """query($id: ID!, $asOf: DateTime) { promotionCheck(botId: $id, asOf: $asOf) {
  passed runningSeconds closedDeals wins winRatePct realizedProfit maxCommittedQuote
  profitPct rules { code passed required actual message } } }"""
PROMOTE = """mutation($id: ID!, $account: ID!) { promoteBot(id: $id, exchangeAccountId: $account) {
  __typename ... on Bot { id status mode exchangeAccountId }
  ... on BotErrors { code errors { code message } } } }"""
CLOSE = "mutation($id: ID!) { closeDeal(id: $id) { __typename } }"
PAUSE = "mutation($id: ID!) { pauseBot(id: $id) { __typename } }"


def test_limits_are_set_read_back_kept_when_left_out_and_cleared_with_null(server) -> None:
    alice = server.user("alice")
    empty = server.gql(LIMITS, token=alice.token)["riskLimits"]
    assert empty == {"maxOpenDeals": None, "maxPositionQuote": None, "maxExposureQuote": None,
                     "maxDailyLossQuote": None, "openDeals": 0, "exposureQuote": "0",
                     "day": None, "dayRealizedPnl": "0", "pausedUntil": None}
    server.gql(SET_LIMITS, {"input": {"maxOpenDeals": 2, "maxPositionQuote": "500",
                                      "maxDailyLossQuote": "25.5"}}, alice.token)
    answer = server.gql(SET_LIMITS, {"input": {"maxPositionQuote": None,
                                               "maxExposureQuote": "1000"}}, alice.token)
    assert answer["setRiskLimits"] == {"__typename": "RiskLimits", "maxOpenDeals": 2,
                                       "maxPositionQuote": None, "maxExposureQuote": "1000",
                                       "maxDailyLossQuote": "25.5"}
    bob = server.user("bob")  # limits are per user
    assert server.gql(LIMITS, token=bob.token)["riskLimits"]["maxOpenDeals"] is None
    audit = server.gql("{ auditLog(first: 100) { edges { node { aggregateType summary } } } }",
                       token=alice.token)["auditLog"]["edges"]
    changes = [e["node"]["summary"] for e in audit if e["node"]["aggregateType"] == "UserRisk"]
    assert len(changes) == 3 and "max_exposure_quote=1000" in changes[0]  # newest first
    seen_by_bob = server.gql("{ auditLog(first: 100) { edges { node { aggregateType } } } }",
                             token=bob.token)["auditLog"]["edges"]
    assert "UserRisk" not in {e["node"]["aggregateType"] for e in seen_by_bob}


@pytest.mark.parametrize(("given", "code", "field"), [
    ({"maxPositionQuote": "0"}, "NOT_POSITIVE", "maxPositionQuote"),
    ({"maxDailyLossQuote": "1e40"}, "EXPONENT_OUT_OF_RANGE", "maxDailyLossQuote"),
    ({"maxExposureQuote": "12,5"}, "INVALID_NUMBER", "maxExposureQuote"),
    ({"maxOpenDeals": -1}, "NEGATIVE", "maxOpenDeals"),
])
def test_a_bad_limit_is_refused_by_code_and_field_and_nothing_changes(server, given, code,
                                                                      field) -> None:
    alice = server.user("alice")
    server.gql(SET_LIMITS, {"input": {"maxOpenDeals": 3}}, alice.token)
    answer = server.gql(SET_LIMITS, {"input": given}, alice.token)["setRiskLimits"]
    assert answer["__typename"] == "RiskLimitsErrors"
    assert (answer["code"], answer["errors"][0]["field"]) == (code, field)
    assert server.gql(LIMITS, token=alice.token)["riskLimits"]["maxOpenDeals"] == 3


def test_a_deal_over_the_limit_is_refused_and_the_bot_says_why(server) -> None:
    alice = server.user("alice")
    server.gql(SET_LIMITS, {"input": {"maxOpenDeals": 1}}, alice.token)
    server.running_deal(alice, "first")
    second = server.create_bot(alice, "second")
    server.start_bot(alice, second)
    for _ in range(3):
        server.step()
    bot = server.gql(BOT, {"id": second}, alice.token)["bot"]
    assert bot["dealsOpened"] == 0 and bot["status"] == "RUNNING"
    assert bot["warning"].startswith("RISK_LIMIT_REACHED: maxOpenDeals: 1 deals open")
    orders = [e for e in server.runtime.trading.events.get(UUID(second))
              if type(e).__name__ == "RiskLimitReached"]
    assert len(orders) == 1  # recorded once, not at every candle
    limits = server.gql(LIMITS, token=alice.token)["riskLimits"]
    assert limits["openDeals"] == 1 and Decimal(limits["exposureQuote"]) > 100


def test_a_fresh_bot_is_refused_promotion_with_every_rule_and_its_figures(server) -> None:
    alice = server.user("alice")
    bot_id, _ = server.running_deal(alice)
    server.step(59)
    check = server.gql(CHECK, {"id": bot_id}, alice.token)["promotionCheck"]
    assert check["passed"] is False and check["runningSeconds"] == 60
    assert [r["code"] for r in check["rules"] if not r["passed"]][:2] == [
        "PROMOTION_TOO_EARLY", "PROMOTION_TOO_FEW_DEALS"]
    server.gql(PAUSE, {"id": bot_id}, alice.token)
    deal = server.runtime.trading.get_bot(UUID(bot_id)).open_deal_id
    if deal is not None:
        server.gql(CLOSE, {"id": str(deal)}, alice.token)
    answer = server.gql(PROMOTE, {"id": bot_id, "account": alice.paper_account_id},
                        alice.token)["promoteBot"]
    assert answer["__typename"] == "BotErrors"
    codes = [e["code"] for e in answer["errors"]]
    assert codes[:2] == ["PROMOTION_TOO_EARLY", "PROMOTION_TOO_FEW_DEALS"]
    assert set(codes) <= {"PROMOTION_TOO_EARLY", "PROMOTION_TOO_FEW_DEALS",
                          "PROMOTION_WIN_RATE", "PROMOTION_PROFIT"}
    assert "0.00 days" in answer["errors"][0]["message"]
    assert server.gql(BOT, {"id": bot_id}, alice.token)["bot"]["mode"] == "PAPER"


def test_promotion_check_as_of_a_past_moment_answers_what_the_gate_said_then(server) -> None:
    alice = server.user("alice")
    bot_id, _ = server.running_deal(alice)
    started = server.runtime.trading.get_bot(UUID(bot_id)).paper_started_at
    server.step(120)
    then = server.gql(CHECK, {"id": bot_id, "asOf": (started + timedelta(seconds=30))
                              .isoformat()}, alice.token)["promotionCheck"]
    assert then["runningSeconds"] == 30
    later = server.gql(CHECK, {"id": bot_id}, alice.token)["promotionCheck"]
    assert later["runningSeconds"] > 120
    future = server.post(CHECK, {"id": bot_id, "asOf": "2099-01-01T00:00:00Z"}, alice.token)
    assert future["errors"][0]["extensions"]["code"] == "AS_OF_IN_FUTURE"


@pytest.fixture
def lenient(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server whose gate asks for one closed deal only, and that trades live."""
    monkeypatch.setenv("TRADETAPE_BCRYPT_ROUNDS", "4")
    rules = PromotionRules(min_days=Decimal(0), min_closed_deals=1,
                           min_win_rate_pct=Decimal(0), min_profit_pct=Decimal(-100))
    runtime = open_runtime(ServerSettings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}",
                                          speed=60, allow_live=True, promotion=rules))
    from adapters.clock import SettableClock

    clock = SettableClock(T0)
    runtime.clock = runtime.trading.clock = runtime.loop.clock = clock
    try:
        with TestClient(create_app(runtime, manage_runtime=False)) as client:
            yield Server(runtime, client, clock)
    finally:
        runtime.stop()


def test_a_bot_passing_the_gate_moves_to_the_live_account_paused(lenient) -> None:
    server = lenient
    alice = server.user("alice")
    bot_id, _ = server.running_deal(alice)
    for _ in range(240):  # until its first deal closed (small take profit)
        server.step(5)
        if server.runtime.trading.get_bot(UUID(bot_id)).deals_finished:
            break
    live = server.runtime.trading.open_account(owner_id=alice.user_id, exchange="binance",
                                               quote_asset="USDT", kind=AccountKind.LIVE)
    deal = server.runtime.trading.get_bot(UUID(bot_id)).open_deal_id
    if deal is not None:  # the next deal opened at once: the gate wants no open deal
        refused = server.gql(PROMOTE, {"id": bot_id, "account": str(live)},
                             alice.token)["promoteBot"]
        assert refused["code"] == "DEAL_OPEN"
        server.gql(PAUSE, {"id": bot_id}, alice.token)
        server.gql(CLOSE, {"id": str(deal)}, alice.token)
    deals_before = server.runtime.trading.get_bot(UUID(bot_id)).deals_opened
    answer = server.gql(PROMOTE, {"id": bot_id, "account": str(live)}, alice.token)
    assert answer["promoteBot"] == {"__typename": "Bot", "id": bot_id, "status": "PAUSED",
                                    "mode": "LIVE", "exchangeAccountId": str(live)}
    assert UUID(bot_id) not in server.runtime.paper.bot_ids  # paper trades it no more
    server.step(5)
    assert server.runtime.trading.get_bot(UUID(bot_id)).deals_opened == deals_before
    again = server.gql(PROMOTE, {"id": bot_id, "account": str(live)}, alice.token)
    assert again["promoteBot"]["code"] == "BOT_ALREADY_LIVE"


def test_the_daily_loss_limit_pauses_the_users_bots_and_says_until_when(server) -> None:
    alice = server.user("alice")
    server.gql(SET_LIMITS, {"input": {"maxDailyLossQuote": "0.01"}}, alice.token)
    loser = server.create_bot(alice, "loser", takeProfitPct="5", stopLossPct="0.05",
                              maxSafetyOrders=0)
    idle = server.create_bot(alice, "idle")  # created, not running: left as it is
    server.start_bot(alice, loser)
    for _ in range(300):
        server.step(2)
        if server.gql(LIMITS, token=alice.token)["riskLimits"]["pausedUntil"]:
            break
    limits = server.gql(LIMITS, token=alice.token)["riskLimits"]
    assert limits["pausedUntil"] == "2026-03-02T00:00:00+00:00"
    assert limits["day"] == "2026-03-01" and Decimal(limits["dayRealizedPnl"]) <= Decimal(
        "-0.01")
    bot = server.gql(BOT, {"id": loser}, alice.token)["bot"]
    assert bot["status"] == "PAUSED" and bot["warning"].startswith("daily loss limit reached")
    assert server.gql(BOT, {"id": idle}, alice.token)["bot"]["status"] == "CREATED"

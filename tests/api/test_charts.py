"""Chart data as a dashboard asks for it over GraphQL: the equity curve of the portfolio and
of one bot (from the ``equity`` projection), candles and prices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.api.conftest import T0
from tests.api.test_queries import traded

CURVE = """query($bot: ID, $from: DateTime!, $to: DateTime, $res: Resolution) {
  equityCurve(botId: $bot, from: $from, to: $to, resolution: $res) {
    time realizedPnl unrealizedPnl equity } }"""


def test_the_equity_curve_ends_at_the_portfolio_and_bot_figures(server):
    alice, bot_id = traded(server)
    span = {"from": (T0 - timedelta(minutes=2)).isoformat(),
            "to": (T0 + timedelta(hours=1)).isoformat(), "res": "MINUTE"}
    curve = server.gql(CURVE, span, alice.token)["equityCurve"]
    assert len(curve) == 62 + 1 and curve[0]["equity"] == "0"  # nothing before trading
    portfolio = server.gql("{ portfolio { realizedPnl unrealizedPnl } }",
                           token=alice.token)["portfolio"]
    last = curve[-1]
    assert Decimal(last["realizedPnl"]) == Decimal(portfolio["realizedPnl"]) != 0
    assert Decimal(last["unrealizedPnl"]) == Decimal(portfolio["unrealizedPnl"])
    assert Decimal(last["equity"]) == Decimal(last["realizedPnl"]) + Decimal(
        last["unrealizedPnl"])
    realized = [Decimal(p["realizedPnl"]) for p in curve]
    assert len(set(realized)) > 2  # it moved, step by step, over the minutes traded

    mine = server.gql(CURVE, {**span, "bot": bot_id}, alice.token)["equityCurve"]
    assert mine[-1] == last  # her only bot: the bot's curve is the portfolio's
    bob = server.user("bob")
    assert server.gql(CURVE, {**span, "bot": bot_id}, bob.token)["equityCurve"] is None
    assert {p["equity"] for p in server.gql(CURVE, span, bob.token)["equityCurve"]} == {"0"}


def test_an_equity_curve_of_too_many_points_or_backwards_is_refused(server):
    alice = server.user("alice")
    far = {"from": T0.isoformat(), "to": (T0 + timedelta(days=30)).isoformat(),
           "res": "MINUTE"}
    body = server.post(CURVE, far, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_POINTS"
    back = {"from": T0.isoformat(), "to": (T0 - timedelta(hours=1)).isoformat()}
    body = server.post(CURVE, back, alice.token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_RANGE"

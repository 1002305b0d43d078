"""Risk limits on a running server, over HTTP: the order that would pass a limit is never
sent (the deal's orders, as the venue got them, stop before it), and a bot whose deal would
pass the open deals limit opens none."""

from __future__ import annotations

from tests.e2e.conftest import BOT, DEAL, create_bot, new_user, start_bot, wait_for

SET_LIMITS = """mutation($input: RiskLimitsInput!) { setRiskLimits(input: $input) {
  __typename ... on RiskLimits { maxOpenDeals maxPositionQuote } } }"""
WARNING = "query($id: ID!) { bot(id: $id) { warning dealsOpened } }"
DEALS = "query($id: ID!) { deals(botId: $id) { edges { node { id } } } }"


def test_risk_limits_refuse_the_orders_that_would_pass_them(launch) -> None:
    server = launch()
    token = new_user(server, "careful@example.com")
    limits = server.gql(SET_LIMITS, {"input": {"maxOpenDeals": 1, "maxPositionQuote": "160"}},
                        token)["setRiskLimits"]
    assert limits == {"__typename": "RiskLimits", "maxOpenDeals": 1, "maxPositionQuote": "160"}
    first = create_bot(server, token, "first")
    start_bot(server, token, first)
    deal_id = wait_for("the first deal", lambda: server.gql(BOT, {"id": first}, token)[
        "bot"]["openDealId"])
    second = create_bot(server, token, "second")  # started while the first deal is open
    start_bot(server, token, second)

    # base 100 + safety order 1 (50) fit in 160; safety order 2 (75) would pass it
    deal = server.gql(DEAL, {"id": deal_id}, token)["deal"]
    buys = sorted(o["safetyOrder"] for o in deal["orders"] if o["side"] == "buy")
    assert buys == [0, 1]
    wait_for("the first bot's warning", lambda: "maxPositionQuote" in (server.gql(
        WARNING, {"id": first}, token)["bot"]["warning"] or ""))
    refused = wait_for("the second bot's refusal", lambda: server.gql(
        WARNING, {"id": second}, token)["bot"]["warning"])
    assert refused.startswith("RISK_LIMIT_REACHED: maxOpenDeals")
    # While the first bot holds a deal, the second opens none and sends no order.
    opened = server.gql(BOT, {"id": first}, token)["bot"]
    if opened["openDealId"] == deal_id:
        assert server.gql(DEALS, {"id": second}, token)["deals"]["edges"] == []

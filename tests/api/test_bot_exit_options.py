"""GraphQL: a bot's exit options of issue 12 (take profit steps, break-even, trailing stop
loss) are taken, shown back and refused rule by rule like every configuration field."""

from __future__ import annotations

from decimal import Decimal as D
from uuid import UUID

from tests.api.conftest import CONFIG, CREATE_BOT

STEPPED = {k: v for k, v in CONFIG.items() if k != "takeProfitPct"} | {
    "takeProfitSteps": [{"pct": "0.1", "volumePct": "60"}, {"pct": "0.3", "volumePct": "40"}],
    "stopLossToBreakeven": True, "stopLossPct": "2", "trailingStopLoss": True,
    "stopLossActivationPct": "0.5",
}
CONFIG_QUERY = """query($id: ID!) { bot(id: $id) { config {
  takeProfitPct takeProfitSteps { pct volumePct } stopLossToBreakeven trailingStopLoss
  stopLossActivationPct } } }"""


def test_a_stepped_bot_with_a_trailing_stop_is_created_and_shows_its_exits(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice, **{k: v for k, v in STEPPED.items()
                                         if k not in CONFIG} | {"takeProfitPct": None})
    config = server.gql(CONFIG_QUERY, {"id": bot_id}, alice.token)["bot"]["config"]
    assert config == {
        "takeProfitPct": "0.1",  # the first step's: what the deal shows as its target
        "takeProfitSteps": [{"pct": "0.1", "volumePct": "60"}, {"pct": "0.3", "volumePct": "40"}],
        "stopLossToBreakeven": True, "trailingStopLoss": True, "stopLossActivationPct": "0.5",
    }


def test_each_invalid_combination_is_refused_with_its_rule(server):
    alice = server.user("alice")
    config = {**CONFIG, "trailingTakeProfitPct": "0.1", "stopLossToBreakeven": True,
              "trailingStopLoss": True,
              "takeProfitSteps": [{"pct": "0.1", "volumePct": "60"}]}
    refused = server.gql(CREATE_BOT, {"name": "x", "config": config},
                         alice.token)["createBot"]
    assert refused["code"] == "INVALID_CONFIG"
    assert {e["rule"] for e in refused["errors"]} == {
        "STEPS_VOLUME_NOT_100", "STEPS_WITH_TRAILING_TAKE_PROFIT", "STEPS_REPLACE_TAKE_PROFIT",
        "TRAILING_STOP_NEEDS_STOP_LOSS"}


DEAL_SELLS = """query($id: ID!) { deal(id: $id) { status closeReason units unitsBought
  averageEntry fills { side price amount fee } sells { step price amount fee at } } }"""


def test_a_stepped_deal_lists_every_step_sold_and_fills_stay_as_they_were(server):
    alice = server.user("alice")
    bot_id = server.create_bot(alice, takeProfitPct=None, takeProfitSteps=[
        {"pct": "0.1", "volumePct": "60"}, {"pct": "0.3", "volumePct": "40"}])
    server.start_bot(alice, bot_id)
    server.step()
    deal_id = str(server.runtime.trading.get_bot(UUID(bot_id)).open_deal_id)
    seen = []  # the deal as GraphQL showed it after each candle, until it closed
    for _ in range(3000):
        server.step()
        deal = server.gql(DEAL_SELLS, {"id": deal_id}, alice.token)["deal"]
        seen.append(deal)
        if deal["status"] == "CLOSED":
            break
    part = next(d for d in seen if d["sells"])  # the first step sold, the deal still open
    [first] = part["sells"]
    bought = D(part["unitsBought"])
    assert part["status"] == "OPEN" and first["step"] == 1
    assert D(first["amount"]) == bought * D("0.6")  # 60 % of what it held
    assert D(first["price"]) >= D(part["averageEntry"]) * D("1.001")
    assert D(part["units"]) == bought - D(first["amount"])
    assert [f["side"] for f in part["fills"]].count("sell") == 0  # fills: buys and the exit
    closed = seen[-1]
    assert (closed["status"], closed["closeReason"]) == ("CLOSED", "take_profit_step")
    assert [s["step"] for s in closed["sells"]] == [1, 2]
    assert closed["sells"][0] == first  # a sell, once listed, stays as it was
    assert sum(D(s["amount"]) for s in closed["sells"]) == D(closed["unitsBought"])
    [exit_fill] = [f for f in closed["fills"] if f["side"] == "sell"]
    assert {k: closed["sells"][1][k] for k in exit_fill if k != "side"} == {
        k: v for k, v in exit_fill.items() if k != "side"}

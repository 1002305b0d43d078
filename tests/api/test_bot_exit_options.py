"""GraphQL: a bot's exit options of issue 12 (take profit steps, break-even, trailing stop
loss) are taken, shown back and refused rule by rule like every configuration field."""

from __future__ import annotations

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

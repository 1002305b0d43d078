"""A paper bot with take profit steps and break-even (issue 12), restarted between two steps:
the restarted process sells the remaining steps at the prices frozen at the first one, with
the same outcome as a process that never stopped, and places no order twice."""

from __future__ import annotations

from collections import Counter

from application.replay import read_log
from tests.integration.test_paper_trading import BOT, World, candles  # noqa: F401 (fixture)

STEPPED = {**{k: v for k, v in BOT.items() if k != "take_profit_pct"},
           "take_profit_steps": [{"pct": "0.2", "volume_pct": "40"},
                                 {"pct": "0.4", "volume_pct": "35"},
                                 {"pct": "0.7", "volume_pct": "25"}],
           "stop_loss_to_breakeven": True}


def steps_sold(trading) -> list[tuple[int, int]]:
    """(step, candle timestamp) of every step sold but the closing one."""
    sold = []
    for n in read_log(trading):
        if n.topic.endswith("Deal.StepSold"):
            event = trading.mapper.to_domain_event(n)
            sold.append((event.step, int(event.correlation_id.rsplit(":", 1)[1])))
    return sold


def test_restart_between_steps_sells_the_rest_as_if_it_had_not_stopped(tmp_path, candles):  # noqa: F811
    straight = World(f"sqlite:///{tmp_path / 'straight.sqlite'}", "s", STEPPED)
    straight.feed(candles, 0, 900)
    sold = steps_sold(straight.trading)
    assert sold, "a step sold"
    index_of = {int(t): i for i, t in enumerate(candles.timestamps[:900])}
    # restart at the candle after a first step (the deal holds what the others will sell)
    restart_at = next(index_of[ts] + 1 for step, ts in sold if step == 1
                      and any(later == 2 and index_of[t] >= index_of[ts] + 1
                              for later, t in sold))

    restarted = World(f"sqlite:///{tmp_path / 'restarted.sqlite'}", "r", STEPPED)
    restarted.feed(candles, 0, restart_at)
    assert restarted.trading.get_bot(restarted.bot_id).open_deal_id is not None
    restarted.restart()
    restarted.feed(candles, restart_at, 900)

    outcome = straight.outcome()
    assert {str(reason) for reason, _, _ in outcome["closed"]} >= {"take_profit_step"}
    assert restarted.outcome() == outcome
    assert steps_sold(restarted.trading) == sold
    submitted = Counter()
    for n in read_log(restarted.trading):
        if n.topic.endswith("Order.Submitted"):
            event = restarted.trading.mapper.to_domain_event(n)
            submitted[(event.deal_id, str(event.purpose), event.safety_order,
                       event.price)] += 1
    assert max(submitted.values()) == 1

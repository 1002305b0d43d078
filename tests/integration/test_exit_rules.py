"""Take profit steps, break-even and the trailing stop loss (issue 12), on candles small
enough to work out by hand (the README's worked examples).

Every bot buys 100 quote at the first close (100): 1 unit, average 100. No fees unless a
test says so. A candle is walked open → low → high → close when it closes up, else
open → high → low → close."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from adapters.clock import SequentialIds
from adapters.exchanges.paper import PaperExchange
from application.engine import DcaEngine
from domain.bots import Bot
from domain.dca import DcaConfig
from domain.recording import ENGINE, Cause
from tests.integration.test_trailing_take_profit import BOT as TRAILING_BOT
from tests.integration.test_trailing_take_profit import MINUTE, T0, names, run

BOT = {k: v for k, v in TRAILING_BOT.items()
       if k not in ("take_profit_pct", "trailing_take_profit_pct")}
STEPS = [{"pct": "1", "volume_pct": "50"}, {"pct": "2", "volume_pct": "30"},
         {"pct": "3", "volume_pct": "20"}]
STEPPED = {**BOT, "take_profit_steps": STEPS}


def sells(deal) -> list[tuple[D, D]]:
    return [(s["price"], s["amount"]) for s in deal["sells"]]


def test_each_step_sells_its_share_at_its_price_and_the_last_closes_the_deal():
    # up candle 100 → 99.5 → 102.5 → 102: step 1 (101) sells 50% of 1 unit, step 2 (102)
    # 30%. The next candle opens at 103.5, above step 3 (103): the 0.2 left sell there.
    summary, deals, _, events = run(STEPPED, [("100", "102.5", "99.5", "102"),
                                              ("103.5", "104", "103.5", "104")])
    [deal] = deals
    assert sells(deal) == [(D(101), D("0.5")), (D(102), D("0.3")), (D("103.5"), D("0.2"))]
    assert (deal["reason"], deal["exit"]) == ("take_profit_step", D("103.5"))
    assert deal["closed"] == T0 + 2 * MINUTE
    assert deal["pnl"] == D("1.8")  # 50.5 + 30.6 + 20.7 − 100
    assert (summary["take_profits"], summary["take_profit_steps_filled"]) == (1, 3)
    assert names(events[deal["id"]]).count("StepSold") == 2


def test_a_deal_between_steps_is_marked_with_what_its_sells_took_in():
    # after the first candle above: 0.2 unit at 102 + 81.1 taken in − 100 spent = 1.5
    summary, deals, open_deal, _ = run(STEPPED, [("100", "102.5", "99.5", "102")])
    assert deals == [] and summary["deals_open"] == 1
    assert open_deal["units"] == D("0.2")
    assert summary["unrealized_pnl"] == D("1.5")
    assert summary["realized_pnl"] == 0  # realized when the deal closes
    assert summary["take_profit_steps_filled"] == 2


def test_a_gap_across_several_steps_sells_each_at_the_open_in_order():
    _, _, open_deal, _ = run(STEPPED, [("102.5", "102.5", "102", "102")])
    assert sells(open_deal) == [(D("102.5"), D("0.5")), (D("102.5"), D("0.3"))]


def test_the_first_step_cancels_the_safety_orders():
    # safety orders of 80 quote at 80 and 60: the fall to 80 buys 1 unit, average 90, steps
    # at 99 and 108. The rise to 100 sells 1 unit (50% of 2) at 99 and cancels the order at
    # 60, so the fall to 55 buys nothing; the rise to 110 sells the last unit at 108.
    config = {**BOT, "safety_order_quote": "80", "max_safety_orders": 2,
              "price_deviation_pct": "20",
              "take_profit_steps": [{"pct": "10", "volume_pct": "50"},
                                    {"pct": "20", "volume_pct": "50"}]}
    _, deals, _, _ = run(config, [("100", "100", "80", "85"), ("85", "100", "85", "100"),
                                  ("100", "100", "55", "56"), ("56", "110", "56", "110")])
    [deal] = deals
    assert deal["safety_orders"] == 1
    assert sells(deal) == [(D(99), D(1)), (D(108), D(1))]
    assert deal["pnl"] == D(27)  # 99 + 108 − 180


BREAK_EVEN = {**BOT, "stop_loss_to_breakeven": True,
              "take_profit_steps": [{"pct": "1", "volume_pct": "50"},
                                    {"pct": "3", "volume_pct": "50"}]}


def test_break_even_puts_the_stop_at_the_average_once_the_first_step_sold():
    # step 1 sells 0.5 at 101; the stop moves to 100; the fall to 99 sells 0.5 at 100.
    # With a 0.1% fee: 50.5 + 50 − 100 − 0.1 (buy fee) − 0.0505 − 0.05 (sell fees)
    summary, deals, _, _ = run(BREAK_EVEN, [("100", "101.5", "99.8", "101"),
                                            ("101", "101.2", "99", "99.5")], fee="0.001")
    [deal] = deals
    assert sells(deal) == [(D(101), D("0.5")), (D(100), D("0.5"))]
    assert (deal["reason"], deal["exit"]) == ("stop_loss", D(100))
    assert deal["pnl"] == D("0.2995")
    assert (summary["stop_losses"], summary["take_profits"]) == (1, 0)


def test_without_break_even_the_plain_stop_stays():
    config = {**BREAK_EVEN, "stop_loss_to_breakeven": False, "stop_loss_pct": "2"}
    _, deals, open_deal, _ = run(config, [("100", "101.5", "99.8", "101"),
                                          ("101", "101.2", "99", "99.5")])
    assert deals == [] and open_deal["units"] == D("0.5")


TRAILING_STOP = {**BOT, "take_profit_pct": "10", "stop_loss_pct": "2",
                 "trailing_stop_loss": True}


def test_the_trailing_stop_follows_the_highest_and_sells_on_the_turn():
    # highest 105 → stop 102.9 (the plain stop would be at 98); the fall to 102 sells there
    summary, deals, _, events = run(TRAILING_STOP, [("100", "105", "99.5", "104"),
                                                    ("104", "104", "102", "102.5")])
    [deal] = deals
    assert (deal["reason"], deal["exit"], deal["pnl"]) == (
        "trailing_stop_loss", D("102.9"), D("2.9"))
    assert (summary["stop_losses"], summary["trailing_stop_losses"]) == (1, 1)
    assert names(events[deal["id"]])[-2:] == ["StopTrailingTriggered", "Closed"]


def test_a_trailing_stop_that_never_rose_is_still_the_trailing_one():
    _, deals, _, _ = run(TRAILING_STOP, [("100", "100", "97", "97")])
    assert [(d["reason"], d["exit"]) for d in deals] == [("trailing_stop_loss", D(98))]


ACTIVATED = {**TRAILING_STOP, "stop_loss_activation_pct": "3"}


def test_before_activation_the_plain_stop_rests():
    # 102.5 < 103 (activation): the plain stop 98 sells on the fall to 97.9
    _, deals, _, _ = run(ACTIVATED, [("100", "102.5", "98.5", "102"),
                                     ("102", "102", "97.9", "98")])
    assert [(d["reason"], d["exit"]) for d in deals] == [("stop_loss", D(98))]


def test_from_the_activating_price_the_stop_trails():
    # down candle 102 → 103.5 → 101: the rise ends at 103.5 ≥ 103, stop 103.5 × 0.98 =
    # 101.43, and the fall sells there
    _, deals, _, events = run(ACTIVATED, [("100", "102.5", "98.5", "102"),
                                          ("102", "103.5", "101", "101")])
    [deal] = deals
    assert (deal["reason"], deal["exit"], deal["pnl"]) == (
        "trailing_stop_loss", D("101.43"), D("1.43"))
    assert "StopTrailingStarted" in names(events[deal["id"]])


def test_with_break_even_and_a_trailing_stop_the_higher_rests():
    # step 1 sells 0.5 at 101; highest 108 → trailing 102.6, above break-even (100): the
    # fall to 102 sells the rest there: 50.5 + 51.3 − 100
    config = {**TRAILING_STOP, "stop_loss_pct": "5", "stop_loss_to_breakeven": True,
              "take_profit_steps": [{"pct": "1", "volume_pct": "50"},
                                    {"pct": "20", "volume_pct": "50"}]}
    del config["take_profit_pct"]
    _, deals, _, _ = run(config, [("100", "108", "100", "108"), ("108", "108", "102", "102")])
    [deal] = deals
    assert sells(deal) == [(D(101), D("0.5")), (D("102.6"), D("0.5"))]
    assert (deal["reason"], deal["pnl"]) == ("trailing_stop_loss", D("1.8"))


def test_a_paper_account_sells_the_steps_from_what_the_deal_holds():
    venue = PaperExchange("BTC/USDT", fee_rate=D(0), quote_balance=D(1000))
    ids = SequentialIds("paper-steps")
    cause = Cause(datetime(2026, 1, 1, tzinfo=UTC), ENGINE, "steps")
    bot = Bot.create(ids.new_id(), cause, name="s", owner_id="alice",
                     exchange_account_id="paper", config=DcaConfig.from_mapping(STEPPED))
    bot.start(cause)
    engine = DcaEngine(bot, venue, ids, keep_deals=True)
    venue.listener = engine
    for candle in ((D(100),) * 4, (D(100), D("102.5"), D("99.5"), D(102))):
        engine.begin_step(cause)
        venue.walk_candle(*candle, engine)
        engine.on_close(candle[3])
    balance = venue.fetch_balance()
    assert engine.deal.units == D("0.2")
    assert (balance["BTC"].free, balance["BTC"].locked) == (D("0.2"), 0)
    assert balance["USDT"].free == 1000 - 100 + D("50.5") + D("30.6")


def test_a_stepped_bot_with_a_trailing_stop_is_stored_and_replays(tmp_path, capsys):
    import json

    from adapters.marketdata.shipped import shipped_series
    from api.cli import main
    from tests.integration.test_backtest_command import stored_rows

    config = {**{k: v for k, v in BOT.items() if k != "trailing_take_profit_pct"},
              "max_safety_orders": 3, "stop_loss_pct": "0.2", "trailing_stop_loss": True,
              "stop_loss_activation_pct": "0.3", "stop_loss_to_breakeven": True,
              "take_profit_steps": [{"pct": "0.3", "volume_pct": "60"},
                                    {"pct": "0.7", "volume_pct": "40"}]}
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(config))
    url = f"sqlite:///{tmp_path / 'run.db'}"
    assert main(["backtest", "--candles", str(shipped_series("binance_BTC_USDT-1m-2025-11.csv")),
                 "--config", str(path), "--json", "--deals", "--no-progress",
                 "--store", url]) == 0
    result = json.loads(capsys.readouterr().out)
    reasons = {d["reason"] for d in result["deals"]}
    assert {"take_profit_step", "trailing_stop_loss"} <= reasons
    assert result["take_profit_steps_filled"] > result["take_profits"] > 0
    assert result["trailing_stop_losses"] > 0
    stepped = [d for d in result["deals"] if len(d["sells"]) > 1]
    assert stepped and all(d["exit"] == d["sells"][-1]["price"] for d in stepped)
    topics = [row[0] for row in stored_rows(url)]
    assert any(t.endswith("Deal.StepSold") for t in topics)
    assert main(["replay", "--database", url, "--check", "--no-progress"]) == 0


def test_the_command_refuses_each_invalid_combination_by_name_with_exit_2(tmp_path, capsys):
    import json

    from adapters.marketdata.shipped import shipped_series
    from api.cli import main

    config = {**TRAILING_BOT, "stop_loss_to_breakeven": True, "trailing_stop_loss": True,
              "stop_loss_activation_pct": "1",
              "take_profit_steps": [{"pct": "2", "volume_pct": "60"},
                                    {"pct": "1", "volume_pct": "30"}]}
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(config))
    code = main(["backtest", "--candles", str(shipped_series("freqtrade_UNITTEST_BTC-1m.csv")),
                 "--config", str(path), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 4 and "Traceback" not in err
    for rule in ("STEPS_NOT_INCREASING", "STEPS_VOLUME_NOT_100",
                 "STEPS_WITH_TRAILING_TAKE_PROFIT", "TRAILING_STOP_NEEDS_STOP_LOSS"):
        assert sum(rule in line for line in lines) == 1, rule

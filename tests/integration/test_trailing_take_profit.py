"""Trailing take profit (issue 12), on candles small enough to work out by hand.

Every bot buys 100 quote at the first close (100): 1 unit, average 100. No fees unless a
test says so, so each expected figure is plain arithmetic written out below. A candle is
walked open → low → high → close when it closes up, else open → high → low → close."""

from __future__ import annotations

from decimal import Decimal as D
from uuid import UUID

from adapters.marketdata.csv_candles import candles_from_rows
from application.bootstrap import open_trading, run_backtest_on
from domain.dca import DcaConfig

BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "100",
    "max_safety_orders": 0, "price_deviation_pct": "0.5", "safety_volume_scale": "1",
    "safety_step_scale": "1", "take_profit_pct": "2", "trailing_take_profit_pct": "1",
}
T0, MINUTE = 1_700_000_000_000, 60_000


def run(config: dict, candles: list[tuple[str, str, str, str]], fee: str = "0"):
    """(summary, deal rows, the open deal row, each deal's events) of a backtest. A
    deal that closes is followed by a new one at that candle's close, as always."""
    rows = [(T0 + i * MINUTE, *ohlc) for i, ohlc in enumerate([("100",) * 4, *candles])]
    trading = open_trading("memory")
    try:
        result = run_backtest_on(candles_from_rows(rows), DcaConfig.from_mapping(config),
                                 fee_rate=D(fee), balance=None, store_url="memory",
                                 seed="hand", trading=trading, keep_deals=True)
        deal_ids = [row["id"] for row in [*result.deals, *filter(None, [result.open_deal])]]
        events = {i: [(type(e).__name__, e)
                      for e in trading.repository.event_store.get(UUID(i))]
                  for i in deal_ids}
    finally:
        trading.close()
    return result.summary, result.deals, result.open_deal, events


def names(events) -> list[str]:
    return [name for name, _ in events]


def event(events, name: str):
    return next(e for n, e in events if n == name)


def test_trailing_starts_on_the_rising_leg_and_sells_on_the_falling_leg_of_the_candle():
    # up candle 100 → 99.9 → 105 → 103: the rise passes the take profit (102) and ends at
    # 105, the highest; the fall to the close passes 105 × 0.99 = 103.95, where all sells
    summary, deals, open_deal, events = run(BOT, [("100", "105", "99.9", "103")])
    [deal] = deals
    assert open_deal["opened"] == T0 + MINUTE  # the next deal, at that candle's close
    assert deal["reason"] == "trailing_take_profit"
    assert deal["exit"] == D("103.95")
    assert deal["pnl"] == D("3.95")  # 1 unit × 103.95 − 100
    assert deal["closed"] == T0 + MINUTE
    assert (summary["take_profits"], summary["trailing_take_profits"]) == (1, 1)
    log = events[deal["id"]]
    assert names(log)[-3:] == ["TrailingStarted", "TrailingTriggered", "Closed"]
    started = event(log, "TrailingStarted")
    assert (started.price, started.trailing_pct, started.level) == (D(102), D(1), D("100.98"))
    triggered = event(log, "TrailingTriggered")
    assert (triggered.highest, triggered.level) == (D(105), D("103.95"))


def test_reaching_the_take_profit_sells_nothing():
    # a plain take profit would have sold at 102; trailing holds on while the price stays
    # above 105 × 0.99 = 103.95
    summary, deals, open_deal, events = run(BOT, [("100", "105", "100", "104")])
    assert deals == [] and open_deal is not None
    assert summary["take_profits"] == 0
    assert "TrailingStarted" in names(events[open_deal["id"]])


def test_a_candle_opening_above_the_take_profit_trails_from_its_open():
    # opens at 104 (≥ 102): highest 104, level 102.96. The next candle falls to 102.5 and
    # sells at 102.96; from the take profit price (102) the level would be 100.98: no sale
    _, deals, _, events = run(BOT, [("104", "104", "103", "103"),
                                    ("103", "103.5", "102.5", "103")])
    [deal] = deals
    assert (deal["reason"], deal["exit"], deal["pnl"]) == (
        "trailing_take_profit", D("102.96"), D("2.96"))
    assert deal["closed"] == T0 + 2 * MINUTE
    assert event(events[deal["id"]], "TrailingStarted").price == D(104)


def test_a_gap_down_through_the_trailing_level_sells_at_the_open():
    # rises to 106 (level 104.94) and closes there; the next candle opens at 103, below it
    _, deals, _, _ = run(BOT, [("100", "106", "100", "106"), ("103", "103.5", "102", "103")])
    [deal] = deals
    assert (deal["reason"], deal["exit"], deal["pnl"]) == ("trailing_take_profit", D(103), D(3))


def test_the_exit_may_be_below_the_take_profit_price_and_still_counts_as_one():
    # d = 1.9: the rise ends exactly at the take profit 102, level 102 × 0.981 = 100.062;
    # the next candle falls through it. With a 0.1% fee the deal even loses money:
    # bought 100 + 0.1 fee, sold 100.062 − 0.100062 fee → −0.138062
    config = {**BOT, "trailing_take_profit_pct": "1.9"}
    summary, deals, _, _ = run(config, [("100", "102", "100", "101"),
                                        ("101", "101", "100", "100")], fee="0.001")
    [deal] = deals
    assert (deal["reason"], deal["exit"]) == ("trailing_take_profit", D("100.062"))
    assert deal["exit"] < D(102)
    assert deal["pnl"] == D("-0.138062")
    assert (summary["take_profits"], summary["trailing_take_profits"]) == (1, 1)
    assert summary["stop_losses"] == 0


def test_a_safety_order_filling_after_trailing_started_leaves_it_on():
    # TP 10%, d 9.9%: the rise to 110 reaches the take profit, level 110 × 0.901 = 99.11.
    # The fall to 99.3 fills the safety order at 99.5 (100 quote): the average drops, the
    # level does not, and 99.3 is above it. The next candle falls to 99 and sells at 99.11.
    config = {**BOT, "take_profit_pct": "10", "trailing_take_profit_pct": "9.9",
              "max_safety_orders": 1}
    summary, deals, _, events = run(config, [("100", "110", "100", "110"),
                                             ("110", "110", "99.3", "99.3"),
                                             ("99.3", "99.3", "99", "99")])
    [deal] = deals
    assert deal["safety_orders"] == 1
    assert deal["closed"] == T0 + 3 * MINUTE
    assert (deal["reason"], deal["exit"]) == ("trailing_take_profit", D("99.11"))
    units = 1 + D(100) / D("99.5")
    assert abs(deal["pnl"] - (units * D("99.11") - 200)) < D("1e-20")
    assert deal["pnl"] < 0
    assert summary["take_profits"] == 1
    log = names(events[deal["id"]])
    assert log.index("TrailingStarted") < log.index("BuyFilled", 2) < log.index("Closed")


# TP 20%, d 19%, stop 2.8%: the rise ends at the take profit, 120, whose level is
# 120 × 0.81 = 97.2, the stop's price too (100 × 0.972)
TIED = {**BOT, "take_profit_pct": "20", "trailing_take_profit_pct": "19", "stop_loss_pct": "2.8"}


def test_at_one_price_on_a_falling_leg_the_trailing_take_profit_sells_before_the_stop():
    _, deals, _, _ = run(TIED, [("100", "120", "100", "120"), ("120", "120", "97", "97")])
    [deal] = deals
    assert (deal["reason"], deal["exit"]) == ("trailing_take_profit", D("97.2"))


def test_a_candle_opening_below_both_sells_as_the_stop_at_the_open():
    _, deals, _, _ = run(TIED, [("100", "120", "100", "120"), ("97", "97", "96", "96")])
    [deal] = deals
    assert (deal["reason"], deal["exit"]) == ("stop_loss", D(97))


def test_the_stop_loss_still_sells_before_trailing_starts():
    config = {**BOT, "stop_loss_pct": "1"}
    _, deals, _, _ = run(config, [("100", "101", "98", "98.5")])
    [deal] = deals
    assert (deal["reason"], deal["exit"]) == ("stop_loss", D(99))


def test_two_paper_bots_on_one_pair_each_exit_at_their_own_level():
    # One paper account, two bots bought at 100: A trails (TP 2, d 1), B takes profit at 4%.
    # The candle 100 → 99.9 → 105 → 103: B sells at its price, 104, on the way up (not at the
    # leg's end A follows); A sells at 105 × 0.99 = 103.95 on the way down.
    from datetime import UTC, datetime

    from adapters.clock import SequentialIds
    from adapters.exchanges.paper import PaperExchange
    from application.engine import DcaEngine
    from application.paper_market import Market
    from domain.bots import Bot
    from domain.recording import ENGINE, Cause

    ids = SequentialIds("two")
    venue = PaperExchange("BTC/USDT", fee_rate=D(0))
    market = Market(venue)
    cause = Cause(datetime(2026, 1, 1, tzinfo=UTC), ENGINE, "two")
    for config in (BOT, {**BOT, "take_profit_pct": "4", "trailing_take_profit_pct": None}):
        bot = Bot.create(ids.new_id(), cause, name="b", owner_id="alice",
                         exchange_account_id="paper", config=DcaConfig.from_mapping(config))
        bot.start(cause)
        market.engines[bot.id] = DcaEngine(bot, venue, ids, keep_deals=True)
    for candle in ((D(100),) * 4, (D(100), D(105), D("99.9"), D(103))):
        for engine in market.engines.values():
            engine.begin_step(cause)
        venue.walk_candle(*candle, market)
        for engine in market.engines.values():
            engine.on_close(candle[3])
    trailing, plain = (e.tally.closed_deals for e in market.engines.values())
    assert [(str(d.close_reason), d.exit_price) for d in trailing] == [
        ("trailing_take_profit", D("103.95"))]
    assert [(str(d.close_reason), d.exit_price) for d in plain] == [("take_profit", D(104))]

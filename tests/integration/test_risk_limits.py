"""Risk limits on the paper runner: the buy that would pass a limit is never sent (the
refusal is an event on the bot or the deal), and the daily loss limit pauses every bot of the
user until 00:00 UTC, then resumes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from application.risk_limits import RiskLimits
from domain.bots import BotStatus
from domain.dca import DcaConfig
from domain.deals import Deal
from domain.errors import DomainError
from domain.orders import Order

BOT = {  # a take profit far away: deals stay open while the test looks
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 2, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
    "safety_step_scale": "1.2", "take_profit_pct": "40",
}
LOSER = {**BOT, "max_safety_orders": 0, "stop_loss_pct": "0.1"}  # closes at a loss, soon
EVENING = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


class World:
    """One user (``u1``) with a paper account of 10,000 USDT and bots started in order."""

    def __init__(self, url: str = "memory", configs=(BOT, BOT)):
        self.ids = SequentialIds("risk")
        self.trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                                    ids=self.ids)
        account = self.trading.open_account(owner_id="u1", exchange="paper",
                                            quote_asset="USDT")
        self.trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
        self.account = str(account)
        self.bots = []
        for n, config in enumerate(configs):
            bot_id = self.trading.create_bot(owner_id="u1", name=f"bot {n}",
                                             config=DcaConfig.from_mapping(config),
                                             exchange_account_id=str(account))
            self.trading.start_bot(bot_id, actor="u1")
            self.bots.append(bot_id)
        self.risk = RiskLimits(self.trading)
        self.runner = PaperTrading(self.trading, self.ids, _venue, risk=self.risk)
        self.runner.resume()
        self.minute = 0

    def restart(self, url: str) -> None:
        """The process stopped and started again on ``url``: everything from the log."""
        self.trading.close()
        self.trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                                    ids=SequentialIds("after-restart"))
        self.risk = RiskLimits(self.trading)
        self.runner = PaperTrading(self.trading, self.ids, _venue, risk=self.risk)
        self.runner.resume()

    def limit(self, **limits: str | int | None) -> None:
        self.risk.set_limits("u1", limits, actor="u1")

    def feed(self, candles, minutes: int) -> None:
        for _ in range(minutes):
            o, h, low, c = candles.exact(self.minute)
            self.runner.on_candle("BTC/USDT", int(candles.timestamps[self.minute]), o, h, low,
                                  c, EVENING + timedelta(minutes=self.minute))
            self.minute += 1

    def events(self, suffix: str, bot_id=None) -> list:
        found = []
        for n in read_log(self.trading):
            if n.topic.endswith(suffix):
                event = self.trading.mapper.to_domain_event(n)
                if bot_id is None or bot_id in (event.originator_id,
                                                getattr(event, "bot_id", None)):
                    found.append(event)
        return found


def _venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


def test_max_open_deals_refuses_the_second_bots_deal_before_any_order_once(candles) -> None:
    world = World()
    world.limit(maxOpenDeals=1)
    world.feed(candles, 5)
    first, second = world.bots
    assert world.trading.get_bot(first).open_deal_id is not None
    assert world.trading.get_bot(second).open_deal_id is None
    assert world.events("Order.Submitted", second) == []  # nothing reached the venue
    refusals = world.events("Bot.RiskLimitReached", second)
    assert [(e.limit, e.actor) for e in refusals] == [("maxOpenDeals", "engine")]  # once
    assert "1 deals open, the limit is 1" in refusals[0].message


def test_max_position_quote_leaves_out_the_safety_order_that_would_pass_it(candles) -> None:
    world = World(configs=(BOT,))
    world.limit(maxPositionQuote="160")  # base 100 + safety order 1 (50); not 2 (75)
    world.feed(candles, 1)
    placed = [e.safety_order for e in world.events("Order.Submitted")]
    assert placed == [0, 1]
    (refused,) = world.events("Deal.RiskLimitReached")
    assert (refused.safety_order, refused.limit) == (2, "maxPositionQuote")
    assert "the limit is 160" in refused.message


def test_max_exposure_counts_every_bot_of_the_user(candles, store_url) -> None:
    world = World(store_url)
    world.limit(maxExposureQuote="250")  # the first deal commits ~225 (100 + 50 + 75)
    world.feed(candles, 1)
    first, second = world.bots
    assert len(world.events("Order.Submitted", first)) == 3
    assert world.events("Order.Submitted", second) == []
    (refused,) = world.events("Bot.RiskLimitReached", second)
    assert refused.limit == "maxExposureQuote"
    exposure = world.risk.view("u1").exposure
    assert exposure.open_deals == 1 and Decimal("224") < exposure.committed_quote <= 225


def test_clearing_a_limit_lets_the_waiting_bot_open_its_deal(candles) -> None:
    world = World()
    world.limit(maxOpenDeals=1)
    world.feed(candles, 2)
    world.limit(maxOpenDeals=None)
    world.feed(candles, 1)
    assert world.trading.get_bot(world.bots[1]).open_deal_id is not None


def test_bad_limits_are_refused_by_name_and_change_nothing() -> None:
    world = World(configs=())
    world.limit(maxOpenDeals=3)
    for limits, code in (({"maxPositionQuote": "-5"}, "NOT_POSITIVE"),
                         ({"maxOpenDeals": -1}, "NEGATIVE"),
                         ({"maxExposureQuote": "lots"}, "INVALID_NUMBER")):
        with pytest.raises(DomainError) as refused:
            world.limit(**limits)
        assert refused.value.code == code and refused.value.field == next(iter(limits))
    assert world.risk.view("u1").limits.max_open_deals == 3


def test_daily_loss_pauses_every_bot_until_midnight_utc_then_resumes(candles,
                                                                     store_url) -> None:
    world = World(store_url, configs=(LOSER, LOSER))
    world.limit(maxDailyLossQuote="0.05")
    world.feed(candles, 59)  # 23:00 .. 23:58
    paused = world.events("Bot.RiskPaused")
    assert sorted(e.originator_id for e in paused) == sorted(world.bots)
    assert all("daily loss limit reached" in e.reason for e in paused)
    assert all(e.until == datetime(2026, 1, 2, tzinfo=UTC) for e in paused)
    assert {world.trading.get_bot(b).status for b in world.bots} == {BotStatus.PAUSED}
    halted_at = paused[0].timestamp
    opened_while_paused = [e for e in world.events("Deal.Opened") if e.timestamp > halted_at]
    assert opened_while_paused == []
    world.feed(candles, 2)  # 23:59, then 00:00: a new day
    resumed = world.events("Bot.RiskResumed")
    assert sorted(e.originator_id for e in resumed) == sorted(world.bots)
    assert all(e.timestamp == datetime(2026, 1, 2, tzinfo=UTC) for e in resumed)
    assert {world.trading.get_bot(b).status for b in world.bots} == {BotStatus.RUNNING}
    assert [e for e in world.events("Deal.Opened") if e.timestamp > halted_at]


def test_a_bot_its_owner_paused_is_not_resumed_by_the_new_day(candles) -> None:
    world = World(configs=(LOSER, LOSER))
    world.limit(maxDailyLossQuote="0.05")
    world.feed(candles, 59)
    first, second = world.bots
    world.trading.start_bot(first, actor="u1")  # restarted by hand during the pause ...
    world.trading.pause_bot(first, actor="u1")  # ... and paused again by hand
    world.feed(candles, 2)
    assert world.trading.get_bot(first).status is BotStatus.PAUSED
    assert world.trading.get_bot(second).status is BotStatus.RUNNING


def test_the_pause_outlives_a_restart_and_ends_at_midnight(candles,
                                                           persistent_store_url) -> None:
    url = persistent_store_url
    world = World(url, configs=(LOSER,))
    world.limit(maxDailyLossQuote="0.05")
    world.feed(candles, 59)
    assert world.trading.get_bot(world.bots[0]).status is BotStatus.PAUSED
    world.restart(url)
    world.feed(candles, 2)
    assert world.trading.get_bot(world.bots[0]).status is BotStatus.RUNNING
    world.trading.close()


def _log(trading) -> list[tuple[str, bytes]]:
    return [(n.topic, n.state) for n in read_log(trading)]


def test_without_limits_the_gate_changes_no_event(candles) -> None:
    """The gate consulted with no limits set, or no gate at all: the same events, byte for
    byte (the engine decides from what it is given only)."""
    gated = World(configs=(LOSER, BOT))
    gated.feed(candles, 120)
    plain = World(configs=(LOSER, BOT))
    plain.runner = PaperTrading(plain.trading, plain.ids, _venue)  # no gate at all
    plain.runner.resume()
    plain.feed(candles, 120)
    assert _log(gated.trading) == _log(plain.trading)


def test_the_same_limits_and_candles_give_the_same_events(candles) -> None:
    runs = []
    for _ in range(2):
        world = World(configs=(LOSER, LOSER, BOT))
        world.limit(maxOpenDeals=2, maxPositionQuote="160", maxDailyLossQuote="0.3")
        world.feed(candles, 90)
        runs.append(_log(world.trading))
    assert runs[0] == runs[1]
    assert any(topic.endswith("Bot.RiskLimitReached") for topic, _ in runs[0])
    assert any(topic.endswith("Bot.RiskPaused") for topic, _ in runs[0])


@settings(max_examples=8, deadline=None)
@given(open_deals=st.none() | st.integers(min_value=0, max_value=3),
       position=st.sampled_from([None, "100", "150", "160", "260"]),
       exposure=st.sampled_from([None, "120", "300", "500"]),
       daily=st.sampled_from([None, "0.05", "0.5"]))
def test_no_order_ever_passes_the_limits_and_the_same_run_gives_the_same_events(
        candles, open_deals, position, exposure, daily) -> None:
    logs = []
    for _ in range(2):
        world = World(configs=(LOSER, BOT, LOSER))
        world.limit(maxOpenDeals=open_deals, maxPositionQuote=position,
                    maxExposureQuote=exposure, maxDailyLossQuote=daily)
        world.feed(candles, 60)
        logs.append(_log(world.trading))
    assert logs[0] == logs[1]
    events = [world.trading.mapper.to_domain_event(n) for n in read_log(world.trading)]
    _check_open_deals(events, open_deals)
    _check_positions(events, position and Decimal(position))


def _check_open_deals(events, limit) -> None:
    """At no moment more deals open than ``limit``."""
    open_now = set()
    for event in events:
        if isinstance(event, Deal.Opened):
            open_now.add(event.originator_id)
            assert limit is None or len(open_now) <= limit
        elif isinstance(event, Deal.Closed | Deal.Cancelled):
            open_now.discard(event.originator_id)


def _check_positions(events, limit) -> None:
    """Each deal's base fill plus every safety order sent for it stays within ``limit``."""
    if limit is None:
        return
    committed: dict = {}
    for event in events:
        if isinstance(event, Deal.BuyFilled) and event.safety_order == 0:
            committed[event.originator_id] = committed.get(event.originator_id, 0) + (
                event.price * event.amount)
        elif isinstance(event, Order.Submitted) and event.safety_order > 0:
            committed[event.deal_id] = committed[event.deal_id] + event.price * event.amount
            assert committed[event.deal_id] <= limit

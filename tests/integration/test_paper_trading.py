"""Paper trading in real time: bots fed one candle at a time, resumed after a restart from
their events alone, with no order placed twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from application.trading import Trading
from domain.bots import BotStatus
from domain.dca import DcaConfig
from domain.orders import Order, OrderPurpose

BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 4, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
    "safety_step_scale": "1.2", "take_profit_pct": "0.4",
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


class World:
    """A store, an account with 10,000 USDT and one running bot, restartable at will."""

    def __init__(self, url: str, seed: str, config: dict = BOT):
        self.url, self.seed, self.restarts = url, seed, 0
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.ids = SequentialIds(seed)
        self.trading = open_trading(url, clock=self.clock, ids=self.ids)
        account = self.trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
        self.trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
        self.bot_id = self.trading.create_bot(owner_id="u1", name="paper bot",
                                              config=DcaConfig.from_mapping(config),
                                              exchange_account_id=str(account))
        self.trading.start_bot(self.bot_id, actor="u1")
        self.runner = self._runner()

    def _runner(self) -> PaperTrading:
        runner = PaperTrading(self.trading, self.ids, venue)
        runner.resume()
        return runner

    def restart(self) -> None:
        """A new process: new application and runner on the same store, ids continuing."""
        self.trading.close()
        self.restarts += 1
        self.ids = SequentialIds(f"{self.seed}-after-restart-{self.restarts}")
        self.trading = open_trading(self.url, clock=self.clock, ids=self.ids)
        self.runner = self._runner()

    def feed(self, candles, start: int, end: int) -> None:
        for i in range(start, end):
            o, h, low, c = candles.exact(i)
            self.runner.on_candle("BTC/USDT", int(candles.timestamps[i]), o, h, low, c,
                                  self.clock.now())

    def outcome(self) -> dict:
        closed = []
        for n in read_log(self.trading):
            if n.topic.endswith("Deal.Closed"):
                event = self.trading.mapper.to_domain_event(n)
                closed.append((event.reason, event.price, event.realized_pnl))
        return {"closed": closed, "bot": self.trading.get_bot(self.bot_id).deals_finished}


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


def safety_orders_per_deal(trading) -> Counter:
    placed = Counter()
    for n in read_log(trading):
        if n.topic.endswith("Order.Submitted"):
            event = trading.mapper.to_domain_event(n)
            if event.purpose is OrderPurpose.SAFETY:
                placed[(event.deal_id, event.safety_order)] += 1
    return placed


def safety_fill_candles(trading) -> list[tuple[int, int]]:
    """(candle index of the deal's opening, candle index of a safety fill) per safety fill;
    the engine's correlation ids name the candle."""
    opened, fills = {}, []
    for n in read_log(trading):
        if not n.topic.endswith(("Deal.Opened", "Deal.BuyFilled")):
            continue
        event = trading.mapper.to_domain_event(n)
        ts = int(event.correlation_id.rsplit(":", 1)[1])
        if n.topic.endswith("Deal.Opened"):
            opened[event.originator_id] = ts
        elif event.safety_order > 0:
            fills.append((opened[event.originator_id], ts))
    return fills


def test_restart_mid_deal_resumes_with_the_same_outcome_and_no_order_placed_twice(
    tmp_path, candles
):
    straight = World(f"sqlite:///{tmp_path / 'straight.sqlite'}", "s")
    straight.feed(candles, 0, 900)
    index_of = {int(t): i for i, t in enumerate(candles.timestamps[:900])}
    # Restart just before a safety order that rested through the restart fills.
    opened_ts, fill_ts = next((o, f) for o, f in safety_fill_candles(straight.trading)
                              if index_of[f] - index_of[o] > 1)
    restart_at = index_of[fill_ts]

    restarted = World(f"sqlite:///{tmp_path / 'restarted.sqlite'}", "r")
    restarted.feed(candles, 0, restart_at)
    assert restarted.trading.get_bot(restarted.bot_id).open_deal_id is not None
    restarted.restart()
    assert restarted.runner.bot_ids == {restarted.bot_id}
    restarted.feed(candles, restart_at, 900)

    assert straight.outcome()["closed"], "the bot traded"
    assert restarted.outcome() == straight.outcome()
    assert (opened_ts, fill_ts) in safety_fill_candles(restarted.trading)
    placed = safety_orders_per_deal(restarted.trading)
    assert placed and max(placed.values()) == 1


def test_a_paused_bot_opens_no_new_deal_but_finishes_its_open_one(tmp_path, candles):
    world = World(f"sqlite:///{tmp_path / 'w.sqlite'}", "p")
    world.feed(candles, 0, 5)
    deal_id = world.trading.get_bot(world.bot_id).open_deal_id
    with world.runner.lock:
        world.trading.pause_bot(world.bot_id, actor="u1")
    world.feed(candles, 5, 3000)
    bot = world.trading.get_bot(world.bot_id)
    assert world.trading.get_deal(deal_id).status.value == "closed"
    assert bot.deals_opened == 1 and bot.open_deal_id is None
    assert world.runner.bot_ids == set()


def test_a_bot_whose_base_order_is_refused_stops_with_the_reason_until_reset(tmp_path, candles):
    world = World(f"sqlite:///{tmp_path / 'poor.sqlite'}", "q")
    account = world.trading.get_bot(world.bot_id).exchange_account_id
    from uuid import UUID

    world.trading.withdraw(UUID(account), "USDT", Decimal("9950"), actor="u1")
    world.restart()
    world.feed(candles, 0, 3)
    rejected = [n for n in read_log(world.trading) if n.topic.endswith("Order.Rejected")]
    assert len(rejected) == 1  # not once more at every close
    bot = world.trading.get_bot(world.bot_id)
    assert bot.open_deal_id is None
    assert bot.status is BotStatus.ERROR and "insufficient funds" in bot.error_reason

    world.trading.deposit(UUID(account), "USDT", Decimal("9950"), actor="u1")
    world.trading.reset_bot_error(world.bot_id, actor="u1")
    world.trading.start_bot(world.bot_id, actor="u1")
    world.restart()
    world.feed(candles, 3, 4)
    assert world.trading.get_bot(world.bot_id).open_deal_id is not None


def test_a_restart_loads_only_the_open_deals_orders_and_keeps_the_balances(
        tmp_path, candles, monkeypatch):
    world = World(f"sqlite:///{tmp_path / 'long.sqlite'}", "r")
    world.feed(candles, 0, 1800)  # three deals closed, the fourth open with resting orders
    bot = world.trading.get_bot(world.bot_id)
    assert bot.deals_finished >= 3 and bot.open_deal_id is not None
    market = next(iter(world.runner._markets.values()))
    before = market.venue.fetch_balance()
    open_orders = {o.id for o in market.engines[world.bot_id].orders.values()}
    assert open_orders

    loaded: list = []
    original = Trading.load

    def counting(self, aggregate_id, kind):
        if kind is Order:
            loaded.append(aggregate_id)
        return original(self, aggregate_id, kind)

    monkeypatch.setattr(Trading, "load", counting)
    world.restart()

    # Only the open deal's orders are loaded (the closed deals' are never read back)...
    assert set(loaded) <= {n.originator_id for n in read_log(world.trading)
                           if n.topic.endswith("Order.Submitted")
                           and world.trading.mapper.to_domain_event(n).deal_id
                           == bot.open_deal_id}
    resumed = next(iter(world.runner._markets.values()))
    assert {o.id for o in resumed.engines[world.bot_id].orders.values()} == open_orders
    # ...and the venue's balances come out as they were: fills summed from the log.
    assert resumed.venue.fetch_balance() == before


def test_a_runner_reads_the_log_once_and_keeps_what_it_read_current(tmp_path, candles,
                                                                     monkeypatch):
    """A second user's first bot opens a new market without reading the whole log again
    (on a long log that took seconds, every bot waiting), and what the runner keeps is what
    reading the log afresh gives."""
    from application.paper_log import PaperLog

    reads = []
    original = PaperLog.__init__

    def counting(self, trading):
        reads.append(trading)
        original(self, trading)

    monkeypatch.setattr(PaperLog, "__init__", counting)
    world = World(f"sqlite:///{tmp_path / 'index.sqlite'}", "ix")
    world.feed(candles, 0, 600)
    account = world.trading.open_account(owner_id="u2", exchange="paper", quote_asset="USDT")
    world.trading.deposit(account, "USDT", Decimal("5000"), actor="u2")
    second = world.trading.create_bot(owner_id="u2", name="second bot",
                                      config=DcaConfig.from_mapping(BOT),
                                      exchange_account_id=str(account))
    world.trading.start_bot(second, actor="u2")
    world.runner.follow(second)
    assert world.runner._markets[(str(account), "BTC/USDT")].venue.fetch_balance()[
        "USDT"].free == Decimal("5000")
    world.feed(candles, 600, 1500)
    assert len(reads) == 1

    kept, fresh = world.runner._log, PaperLog(world.trading)
    for key in world.runner._markets:
        assert kept.fills(*key) == fresh.fills(*key) != (0, 0)
    deals = {n.originator_id for n in read_log(world.trading) if n.topic.endswith("Deal.Opened")}
    assert len(deals) > 4
    assert all(kept.orders_of(deal) == fresh.orders_of(deal) for deal in deals)

"""Another writer saves a bot just before a live venue's write-ahead (billing pausing it, a
rename from the API): the write-ahead's append is refused, the request never leaves, the
bot is not failed for it, the candle is stepped again from the log, and the race is one
info line. Real ccxt binance class against the local exchange simulator, SQLite store."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from domain.accounts import AccountKind
from domain.dca import DcaConfig
from domain.errors import ConcurrencyConflictError
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator
from tests.exchange_simulator.venues import simulator_venue
from tests.integration.test_live_trading import (
    BOT,
    MINUTE,
    T0,
    LiveWorld,
    assert_log_matches_the_exchange,
)

RUNNER_LOGS = ("tradetape.paper", "tradetape.live", "tradetape.engine")


def lines_of(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name in RUNNER_LOGS and
            "CANCEL_REFUSED" not in r.getMessage() and
            "ORDER_NEEDS_ATTENTION" not in r.getMessage()]


@pytest.fixture(scope="module")
def candles():
    return load_candles(str(BTC_USDT_CANDLES))


def until_a_deal_closed(world: LiveWorld, candles) -> int:
    """Feed candles until the bot's first deal closed: the next one opens at a close."""
    i = 0
    while not world.events("Closed"):
        world.feed(candles, i, i + 1)
        i += 1
    return i


def race_the_write_ahead(world: LiveWorld, other, candles, i: int) -> tuple[int, list]:
    """Feed candles from ``i`` until the runner stores a deal's start with its base order
    (the write-ahead): ``other`` renames the bot just before that append. Returns the
    raced candle and the ids of the orders the refused append held."""
    recorder, raced = world.trading.recorder, []
    insert = recorder.insert_events

    def racing(stored, *args, **kwargs):
        topics = [s.topic for s in stored]
        if not raced and any(t.endswith("Order.Submitted") for t in topics) and any(
                t.endswith("Bot.DealStarted") for t in topics):
            raced.append([s.originator_id for s in stored
                          if s.topic.endswith("Order.Submitted")])
            other.rename_bot(world.bot_id, "renamed elsewhere", actor="u1")
        return insert(stored, *args, **kwargs)

    recorder.insert_events = racing
    try:
        while not raced:
            world.feed(candles, i, i + 1)
            i += 1
    finally:
        recorder.insert_events = insert
    return i - 1, raced[0]


def as_traded(world: LiveWorld) -> list[tuple]:
    """The log as a trader reads it: each event's kind, its bot or version, cause and
    figures, without the ids drawn (a refused step drew some, so the next ones differ) and
    the seconds the test's clock ticked."""
    drawn = {"timestamp", "client_order_id", "exchange_order_id"}
    bot = {world.bot_id: "the bot"}
    return [(n.topic, bot.get(n.originator_id, n.originator_version), sorted(
        (k, bot.get(v, "an id") if isinstance(v, UUID) else v)
        for k, v in vars(world.trading.mapper.to_domain_event(n)).items() if k not in drawn))
        for n in read_log(world.trading)]


def rename_apart(log: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """The log without the rename's events, and those events. Raced, the rename is stored
    where it came: after what the candle's write-aheads stored before it (a cancel, the
    sell of the take profit); before it came, it is stored ahead of the whole candle."""
    renamed = [e for e in log if e[0].endswith("Renamed")]
    return [e for e in log if e not in renamed], renamed


def test_a_race_on_the_write_ahead_of_a_live_order_sends_nothing_and_fails_no_bot(
        tmp_path, candles, caplog):
    """The bot is renamed by another writer while the runner stores the deal it opens and
    that deal's base order (write-ahead): nothing of it is stored or sent, the candle is
    stepped again on the renamed bot, which is not failed and trades on; one info line."""
    url = f"sqlite:///{tmp_path / 'raced.sqlite'}"
    with running_simulator(speed=0) as sim:
        world = LiveWorld(url, sim)
        i = until_a_deal_closed(world, candles)
        other = open_trading(url, clock=world.clock, ids=SequentialIds("racer"))
        opened = world.trading.get_bot(world.bot_id).deals_opened
        with caplog.at_level(logging.INFO):
            i, unsent = race_the_write_ahead(world, other, candles, i)
        submitted = {e.originator_id for e in world.events("Submitted")}
        assert not set(unsent) & submitted, "the refused write-ahead stored nothing"
        bot = world.trading.get_bot(world.bot_id)
        assert (bot.status.name, bot.name) == ("RUNNING", "renamed elsewhere")
        lines = lines_of(caplog)
        assert [r.levelno for r in lines] == [logging.INFO], [r.getMessage() for r in lines]
        assert "stepped again from the log" in lines[0].getMessage()
        world.feed(candles, i + 1, i + 201)
        assert world.trading.get_bot(world.bot_id).deals_opened > opened  # it trades on
        assert_log_matches_the_exchange(world)  # every order sent once, every trade logged
        world.trading.close()
        other.close()


def test_a_raced_live_candle_stores_what_a_rename_before_it_stores(tmp_path, candles):
    """The log of a live bot whose write-ahead was raced (renamed by another writer just
    before the append of the deal it opens) is the log of the same rename given just before
    that candle, event for event, ids drawn aside: the raced candle closes the last deal
    and opens the next one at its close, as a first step after the rename does (the deal
    is not closed outside the candle, by the reconciliation of the rebuilt bot, with the
    next one opening a candle late); trading goes on alike, each order sent once."""
    worlds = []
    with running_simulator(speed=0) as raced_sim, running_simulator(speed=0) as calm_sim:
        raced = LiveWorld(f"sqlite:///{tmp_path / 'raced.sqlite'}", raced_sim)
        other = open_trading(raced.url, clock=raced.clock, ids=SequentialIds("racer"))
        at, _ = race_the_write_ahead(raced, other, candles, until_a_deal_closed(raced, candles))
        calm = LiveWorld(f"sqlite:///{tmp_path / 'calm.sqlite'}", calm_sim)
        calm.feed(candles, 0, at)
        before = open_trading(calm.url, clock=calm.clock, ids=SequentialIds("racer"))
        before.rename_bot(calm.bot_id, "renamed elsewhere", actor="u1")
        calm.feed(candles, at, at + 1)
        assert rename_apart(as_traded(raced)) == rename_apart(as_traded(calm)), "the candle"
        for world in (raced, calm):
            world.feed(candles, at + 1, at + 150)
        assert rename_apart(as_traded(raced)) == rename_apart(as_traded(calm)), "and after"
        for world in (raced, calm):
            assert_log_matches_the_exchange(world)
            worlds.append(world.trading.get_bot(world.bot_id).deals_opened)
        for trading in (other, before, raced.trading, calm.trading):
            trading.close()
    assert worlds[0] == worlds[1] >= 2


class Polling:
    """Wraps a live venue's ``walk_candle``: ``active`` while the venue polls the exchange
    (before it tells the market's watchers anything), so a test can act just before a
    request the venue itself sends then (a cancel sent again)."""

    def __init__(self, venue):
        self.active, walk = False, venue.walk_candle
        polling = self

        class Watcher:
            def __init__(self, watcher):
                self.watcher = watcher

            def __getattr__(self, name):
                polling.active = False  # the poll is over: the watchers hear of it
                return getattr(self.watcher, name)

        def walk_candle(o, h, low, c, watcher):
            self.active = True
            try:
                return walk(o, h, low, c, Watcher(watcher))
            finally:
                self.active = False

        venue.walk_candle = walk_candle


def test_a_race_on_a_cancel_the_live_venue_sends_again_is_one_line(
        tmp_path, candles, caplog):
    """A paper bot and a live bot trade the pair; the exchange refuses the live bot's
    cancels, so its venue sends them again while it polls. Another writer renames the
    paper bot (its step of the candle not stored yet) just before such a cancel's
    write-ahead: the append is refused, the candle stepped again, and that is one info
    line, not also an error of the venue; no bot is failed."""
    url = f"sqlite:///{tmp_path / 'polled.sqlite'}"
    with running_simulator(speed=0) as sim:
        clock = SteppingClock(T0, timedelta(seconds=1))
        trading = open_trading(url, clock=clock, ids=SequentialIds("polled"))
        paper = trading.open_account(owner_id="u2", exchange="paper", quote_asset="USDT")
        trading.deposit(paper, "USDT", Decimal("10000"), actor="u2")
        paper_bot = trading.create_bot(  # created first: its market is stepped first
            owner_id="u2", name="paper bot", exchange_account_id=str(paper),
            config=DcaConfig.from_mapping({**BOT, "take_profit_pct": "0.1"}))
        live = trading.open_account(owner_id="u1", exchange="binance", quote_asset="USDT",
                                    kind=AccountKind.LIVE)
        live_bot = trading.create_bot(owner_id="u1", name="live bot",
                                      config=DcaConfig.from_mapping(BOT),
                                      exchange_account_id=str(live))
        trading.start_bot(paper_bot, actor="u2")
        trading.start_bot(live_bot, actor="u1")
        runner = PaperTrading(trading, trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q,
                                                               base_balance=b),
                              live_venues=lambda a, p: simulator_venue(sim, str(a.id), p))
        runner.resume()

        def feed(i: int) -> None:
            ts = int(candles.timestamps[i])
            sim.set_time(ts + MINUTE)
            runner.on_candle("BTC/USDT", ts, *candles.exact(i), clock.now())

        feed(0)
        [(_, _, venue)] = runner.live_markets()
        polling, write_ahead = Polling(venue), venue.before_request
        other = open_trading(url, clock=clock, ids=SequentialIds("racer"))
        raced = []

        def racing() -> None:
            if polling.active and not raced:
                other.rename_bot(paper_bot, f"renamed at {i}", actor="u2")
                try:
                    return write_ahead()
                except ConcurrencyConflictError:
                    raced.append(i)
                    raise
            return write_ahead()

        venue.before_request = racing
        sim.refuse(times=100_000)  # no cancel is carried out: the venue sends them again
        i = 1
        with caplog.at_level(logging.INFO):
            while not raced and i < 1000:
                feed(i)
                i += 1
        assert raced, "no cancel was sent again while the paper bot's step was unstored"
        lines = lines_of(caplog)
        assert [r.levelno for r in lines] == [logging.INFO], [r.getMessage() for r in lines]
        assert "stepped again from the log" in lines[0].getMessage()
        for bot_id in (paper_bot, live_bot):
            assert trading.get_bot(bot_id).status.name == "RUNNING"
        for n in range(i, i + 50):
            feed(n)
        observed = Counter(trading.mapper.to_domain_event(n).trade_id for n in read_log(trading)
                           if n.topic.endswith("Order.TradeObserved"))
        assert observed == Counter(str(t.trade_id) for t in sim.ledger().trades)
        assert all(n == 1 for n in sim.client_order_ids_seen().values())
        trading.close()
        other.close()

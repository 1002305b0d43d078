"""A candle whose append the store fails for a reason other than a race (PostgreSQL down,
the connection cut): nothing of it is stored, and the engines keep nothing the log lacks.
Once the database is back the bots trade on from the log at the next candle."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

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
from tests.integration.test_paper_trading import BOT

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CANDLES = 400


class DatabaseOutage:
    """The network edge, faked: while ``down``, every connection the store asks for is
    refused as psycopg refuses one to a stopped server. ``armed``, it takes the database down
    just as the next append ``when`` picks begins (the look at the log before it worked)."""

    def __init__(self, trading, when=lambda stored_events: True):
        self.down, self.armed = False, False
        datastore = trading.recorder.datastore
        connect, insert = datastore.get_connection, trading.recorder.insert_events

        def get_connection(*args, **kwargs):
            if self.down:
                raise psycopg.OperationalError("connection refused: the server is down")
            return connect(*args, **kwargs)

        def insert_events(stored_events, *args, **kwargs):
            if self.armed and when(stored_events):
                self.armed, self.down = False, True
            return insert(stored_events, *args, **kwargs)

        datastore.get_connection = get_connection
        trading.recorder.insert_events = insert_events


class World:
    def __init__(self, url: str, seed: str):
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.trading = open_trading(url, clock=self.clock, ids=SequentialIds(seed))
        account = self.trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
        self.trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
        self.bot_ids = [self.trading.create_bot(
            owner_id="u1", name=f"bot {n}", config=DcaConfig.from_mapping(
                {**BOT, "take_profit_pct": str(Decimal("0.4") + n / Decimal(10))}),
            exchange_account_id=str(account)) for n in range(3)]
        for bot_id in self.bot_ids:
            self.trading.start_bot(bot_id, actor="u1")
        self.runner = PaperTrading(self.trading, SequentialIds(f"{seed}-run"),
                                   lambda pair, quote, base: PaperExchange(
                                       pair, quote_balance=quote, base_balance=base))
        self.runner.resume()

    def candle(self, candles, i: int) -> None:
        o, h, low, c = candles.exact(i)
        self.runner.on_candle("BTC/USDT", int(candles.timestamps[i]), o, h, low, c,
                              self.clock.now())

    def closed(self) -> list:
        return sorted((e.reason, e.price, e.realized_pnl)
                      for e in events(self.trading, "Deal.Closed"))


def gaps(trading) -> dict:
    """The aggregates whose stored versions do not run 1, 2, 3, ... (a version skipped)."""
    versions = defaultdict(list)
    for n in read_log(trading):
        versions[n.originator_id].append(n.originator_version)
    return {k: v for k, v in versions.items() if v != list(range(1, len(v) + 1))}


def events(trading, suffix: str) -> list:
    return [trading.mapper.to_domain_event(n) for n in read_log(trading)
            if n.topic.endswith(suffix)]


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


def busy_candle(candles, tmp_path) -> int:
    """A candle mid-way whose step stores something (a fill, a deal opened or closed)."""
    world = World(f"sqlite:///{tmp_path / 'probe.sqlite'}", "p")
    for i in range(CANDLES):
        before = world.runner.appended
        world.candle(candles, i)
        if i > CANDLES // 4 and world.runner.appended > before:
            world.trading.close()
            return i
    raise AssertionError("no candle stored anything")


def test_an_append_the_database_fails_leaves_the_bots_trading_on_from_the_log(
        postgres_url, tmp_path, candles, caplog):
    failed_at = busy_candle(candles, tmp_path)
    # What the bots do when that candle never reached them: they resume at the next one.
    skipped = World(f"sqlite:///{tmp_path / 'skipped.sqlite'}", "s")
    for i in [*range(failed_at), *range(failed_at + 1, CANDLES)]:
        skipped.candle(candles, i)

    world = World(postgres_url, "w")
    outage = DatabaseOutage(world.trading)
    for i in range(failed_at):
        world.candle(candles, i)
    stored = world.trading.recorder.max_notification_id()
    outage.armed = True
    with caplog.at_level(logging.ERROR), contextlib.suppress(psycopg.OperationalError):
        world.candle(candles, failed_at)
    assert outage.down and not outage.armed, "the append of that candle was refused"
    outage.down = False  # the database is back
    assert world.trading.recorder.max_notification_id() == stored, "nothing was stored"
    said = [r for r in caplog.records if r.name.startswith("tradetape")]
    assert ["APPEND_FAILED" in r.getMessage() for r in said] == [True, False]
    assert "FOLLOW_AGAIN" in said[1].getMessage()  # (the database still down then)
    assert all(r.exc_info is None for r in said), "no traceback"
    for i in range(failed_at + 1, CANDLES):
        world.candle(candles, i)

    assert gaps(world.trading) == {}, "every aggregate's versions follow on, none skipped"
    submitted = Counter(e.client_order_id for e in events(world.trading, "Order.Submitted"))
    assert submitted and max(submitted.values()) == 1, "no order placed twice"
    assert skipped.closed(), "the bots traded"
    assert world.closed() == skipped.closed()
    world.trading.close()
    skipped.trading.close()


LOSER = {**BOT, "max_safety_orders": 0, "stop_loss_pct": "0.1", "take_profit_pct": "40"}
EVENING = datetime(2026, 1, 1, 23, 0, tzinfo=UTC)


def test_a_daily_loss_pause_the_database_failed_to_store_is_counted_again_when_it_is_back(
        postgres_url, candles, caplog):
    """Before, the runner's copies of the bots stayed paused with nothing recorded (they
    stopped trading until a restart, the log saying they ran) and the losses were never
    counted again."""
    clock = SteppingClock(EVENING, timedelta(seconds=1))
    trading = open_trading(postgres_url, clock=clock, ids=SequentialIds("risk"))
    account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
    bots = [trading.create_bot(owner_id="u1", name=f"bot {n}",
                               config=DcaConfig.from_mapping(LOSER),
                               exchange_account_id=str(account)) for n in range(2)]
    for bot_id in bots:
        trading.start_bot(bot_id, actor="u1")
    risk = RiskLimits(trading)
    risk.set_limits("u1", {"maxDailyLossQuote": "0.05"}, actor="u1")
    runner = PaperTrading(trading, SequentialIds("risk-run"), lambda pair, quote, base:
                          PaperExchange(pair, quote_balance=quote, base_balance=base),
                          risk=risk)
    runner.resume()
    outage = DatabaseOutage(trading, when=lambda stored: any(
        s.topic.endswith("RiskPaused") for s in stored))
    outage.armed = True

    def candle(minute: int) -> None:
        o, h, low, c = candles.exact(minute)
        runner.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h, low, c,
                         EVENING + timedelta(minutes=minute))

    minute = 0
    with caplog.at_level(logging.ERROR), contextlib.suppress(psycopg.OperationalError):
        while not outage.down:
            assert minute < 58, "the limit was reached before midnight"
            candle(minute)
            minute += 1
    outage.down = False  # the database is back
    assert [r for r in caplog.records if "APPEND_FAILED" in r.getMessage()]
    assert {trading.get_bot(b).status for b in bots} == {BotStatus.RUNNING}, "not stored"
    candle(minute)  # the next candle, before midnight

    paused = [n for n in read_log(trading) if n.topic.endswith("Bot.RiskPaused")]
    assert sorted(n.originator_id for n in paused) == sorted(bots)
    assert {trading.get_bot(b).status for b in bots} == {BotStatus.PAUSED}
    assert gaps(trading) == {}
    trading.close()


def test_a_live_order_is_never_sent_when_its_write_ahead_fails_and_trades_on_after(
        postgres_url, caplog):
    """A live venue stores the order's events before the request leaves (write-ahead):
    the database down then, the order is never sent, the bot is not failed for it, and once
    the database is back the log still equals the exchange's ledger."""
    from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator
    from tests.integration.test_live_trading import LiveWorld, assert_log_matches_the_exchange

    live = load_candles(str(BTC_USDT_CANDLES))
    with running_simulator(speed=0) as sim:
        world = LiveWorld(postgres_url, sim)
        outage = DatabaseOutage(world.trading, when=lambda stored: any(
            s.topic.endswith("Order.Submitted") for s in stored))
        world.feed(live, 0, 30)  # a deal opened and its orders rest
        assert world.events("Submitted")
        sent = set(sim.client_order_ids_seen())
        outage.armed = True
        i = 30
        with caplog.at_level(logging.ERROR), contextlib.suppress(psycopg.OperationalError):
            while not outage.down:
                assert i < 400, "an order was placed"
                world.feed(live, i, i + 1)
                i += 1
        outage.down = False  # the database is back
        assert set(sim.client_order_ids_seen()) == sent, "no order sent unstored"
        assert not [r for r in caplog.records if "set to error" in r.getMessage()]
        world.feed(live, i, 500)
        assert world.trading.get_bot(world.bot_id).status.name == "RUNNING"
        assert gaps(world.trading) == {}
        assert_log_matches_the_exchange(world)
        world.trading.close()


class CutConnection:
    """The network edge, faked: the next append, once ``armed``, loses its connection with
    the database still up: before its commit (nothing stored) or, ``after_commit``, once
    PostgreSQL has committed it (only the answer lost), as psycopg says either."""

    def __init__(self, trading, after_commit: bool):
        self.armed = False
        insert = trading.recorder.insert_events

        def insert_events(stored_events, *args, **kwargs):
            if not self.armed:
                return insert(stored_events, *args, **kwargs)
            self.armed = False
            if after_commit:
                insert(stored_events, *args, **kwargs)
            raise psycopg.OperationalError("consuming input failed: server closed the "
                                           "connection unexpectedly")

        trading.recorder.insert_events = insert_events


def fills(trading) -> list:
    return sorted((e.price, e.amount) for e in events(trading, "Order.Filled"))


@pytest.mark.parametrize("after_commit", [False, True], ids=["before-commit", "after-commit"])
def test_a_candle_whose_append_lost_its_connection_is_stepped_once(
        postgres_url, tmp_path, candles, caplog, after_commit):
    """The connection cut during a candle's append, the database up: the log is asked
    whether it holds the append. Nothing stored, the candle is stepped on its markets
    before the next one (before, its fills were lost to them: the bots went on from the
    next candle); stored (only the answer lost), it is not stepped again. Either way the
    bots trade exactly as if nothing had happened, no order placed twice, no version
    skipped."""
    failed_at = busy_candle(candles, tmp_path)
    uninterrupted = World(f"sqlite:///{tmp_path / 'all.sqlite'}", "a")
    skipped = World(f"sqlite:///{tmp_path / 'skipped.sqlite'}", "s")
    for i in range(CANDLES):
        uninterrupted.candle(candles, i)
        if i != failed_at:
            skipped.candle(candles, i)
    assert fills(skipped.trading) != fills(uninterrupted.trading), "a candle that matters"

    world = World(postgres_url, "w")
    cut = CutConnection(world.trading, after_commit)
    for i in range(failed_at):
        world.candle(candles, i)
    cut.armed = True
    with caplog.at_level(logging.ERROR), contextlib.suppress(psycopg.OperationalError):
        world.candle(candles, failed_at)
    assert not cut.armed, "the append of that candle lost its connection"
    said = [r.getMessage() for r in caplog.records if r.name.startswith("tradetape")]
    assert len(said) == 1 and "APPEND_FAILED" in said[0], said
    assert ("only the answer was lost" in said[0]) is after_commit, said
    assert ("nothing of it was stored" in said[0]) is not after_commit, said
    for i in range(failed_at + 1, CANDLES):
        world.candle(candles, i)

    assert gaps(world.trading) == {}
    submitted = Counter(e.client_order_id for e in events(world.trading, "Order.Submitted"))
    assert submitted and max(submitted.values()) == 1, "no order placed twice"
    assert fills(world.trading) == fills(uninterrupted.trading)
    assert world.closed() == uninterrupted.closed()
    for one in (world, uninterrupted, skipped):
        one.trading.close()

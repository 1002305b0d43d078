"""A heavy candle's appends sent ahead (``application/appends_ahead.py``): the changes of
the markets stepped so far are stored on the appending thread while the candle's other
markets are decided. What a user could notice: the log is the one a single append gives,
byte for byte; and when an append sent ahead is refused (another writer first) or failed by
the store, nothing is lost, nothing is placed twice and no aggregate skips a version."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from adapters.marketdata.shipped import shipped_series
from application.appends_ahead import AppendsAhead
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.replay import read_log
from domain.bots import BotStatus
from domain.dca import DcaConfig
from tests.integration.test_append_failure import events, gaps
from tests.integration.test_paper_trading import BOT

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNTS, BOTS = 6, 2  # markets are per account and pair: six of BTC/USDT
CANDLES = 400


class Desk:
    """Six paper accounts of one user, two bots each (take profits apart, so they close on
    different candles), run by one ``PaperTrading``; ``ahead``: its appends sent ahead
    every ``ahead`` aggregates (None: one append a candle)."""

    def __init__(self, url: str, ahead: int | None):
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.url = url
        self.trading = open_trading(url, clock=self.clock, ids=SequentialIds("desk"))
        self.bot_ids = []
        for a in range(ACCOUNTS):
            account = self.trading.open_account(owner_id="u1", exchange="paper",
                                                quote_asset="USDT")
            self.trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
            for n in range(BOTS):
                take = Decimal("0.3") + Decimal(a * BOTS + n) / 50
                self.bot_ids.append(self.trading.create_bot(
                    owner_id="u1", name=f"bot {a}-{n}", config=DcaConfig.from_mapping(
                        {**BOT, "take_profit_pct": str(take)}),
                    exchange_account_id=str(account)))
        for bot_id in self.bot_ids:
            self.trading.start_bot(bot_id, actor="u1")
        self.runner = PaperTrading(self.trading, SequentialIds("desk-run"),
                                   lambda pair, quote, base: PaperExchange(
                                       pair, quote_balance=quote, base_balance=base))
        if ahead is not None:
            self.runner.appends_ahead = AppendsAhead(ahead)
        self.runner.resume()
        self.appends = 0

        def counted(stored_events):
            self.appends += 1

        before_inserts(self.trading.recorder, counted)

    def candle(self, candles, i: int) -> None:
        o, h, low, c = candles.exact(i)
        self.runner.on_candle("BTC/USDT", int(candles.timestamps[i]), o, h, low, c,
                              T0 + timedelta(minutes=i))

    def digest(self) -> str:
        """Every event as stored (id, version, topic, state), in log order."""
        made = hashlib.sha256()
        for n in read_log(self.trading):
            made.update(f"{n.originator_id}:{n.originator_version}:{n.topic}:".encode())
            made.update(n.state)
        return made.hexdigest()

    def closes(self) -> list:
        """Every deal's close (reason, price, profit), whatever its id (ids drawn for
        decisions a race voided are not drawn again)."""
        return sorted((e.reason, e.price, e.realized_pnl)
                      for e in events(self.trading, "Deal.Closed"))


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


@pytest.mark.parametrize("library_append", [False, True])
def test_appends_sent_ahead_store_the_log_one_append_a_candle_stores(postgres_url, tmp_path,
                                                                     candles, library_append):
    """Made on the loop's thread and sent from the appending one (our append), or made and
    sent there whole (the library's own append, the seam's off switch): the same log."""
    once = Desk(f"sqlite:///{tmp_path / 'once.sqlite'}", None)
    ahead = Desk(postgres_url, 2)
    ahead.trading.recorder.library_append = library_append
    for i in range(CANDLES):
        once.candle(candles, i)
        ahead.candle(candles, i)
    assert len(once.closes()) >= 2 * ACCOUNTS, "the bots traded: deals closed"
    assert ahead.appends > once.appends, "candles were stored in several appends"
    assert ahead.runner.appended == once.runner.appended
    assert ahead.digest() == once.digest(), "the same events, byte for byte, in order"
    once.trading.close()
    ahead.trading.close()


def assert_nothing_twice_or_skipped(trading) -> None:
    assert gaps(trading) == {}, "no aggregate skipped a version"
    submitted = Counter(e.client_order_id for e in events(trading, "Order.Submitted"))
    assert max(submitted.values()) == 1, "no order placed twice"


def busy(candles, tmp_path) -> int:
    """A candle whose step writes for three markets or more (so some go ahead)."""
    probe = Desk(f"sqlite:///{tmp_path / 'probe.sqlite'}", None)
    for i in range(CANDLES):
        before = len(list(read_log(probe.trading)))
        probe.candle(candles, i)
        written = list(read_log(probe.trading))[before:]
        if i > 5 and len({n.originator_id for n in written if n.topic.endswith("Bot")}
                         | {n.originator_id for n in written
                            if n.topic.endswith("Deal.Opened")}) >= 3:
            probe.trading.close()
            return i
    raise AssertionError("no candle wrote for three markets")


def before_inserts(recorder, before) -> None:
    """``before(stored_events)`` called as each append meets the store (made there whole,
    or made ahead and sent: ``insert_prepared``), before it is sent."""
    insert, send = recorder.insert_events, getattr(recorder, "insert_prepared", None)

    def insert_events(stored_events, *args, **kwargs):
        before(stored_events)
        return insert(stored_events, *args, **kwargs)

    def insert_prepared(stored_events, prepared):
        if prepared is not None:  # (else sent by ``insert_events``: heard there)
            before(stored_events)
        return send(stored_events, prepared)

    recorder.insert_events = insert_events
    if send is not None:  # (PostgreSQL's)
        recorder.insert_prepared = insert_prepared


class OnAppend:
    """The network edge, faked where an append meets the store: at the ``nth`` append from
    when it is armed, ``act`` runs first with the stored events it is about to insert."""

    def __init__(self, trading, nth: int, act):
        self.armed, self.nth, self.act, self.count = False, nth, act, 0
        before_inserts(trading.recorder, self._before)

    def _before(self, stored_events) -> None:
        if self.armed:
            self.count += 1
            if self.count == self.nth:
                self.armed = False
                self.act(stored_events)


def bot_in(trading, stored_events):
    """A bot whose events are in ``stored_events``."""
    for stored in stored_events:
        if stored.topic.startswith("domain.bots:Bot."):
            return stored.originator_id
    raise AssertionError("no bot's event in that append")


def raced(url: str, candles, at: int, nth: int, paused=None):
    """A desk whose ``nth`` append of candle ``at`` finds one of its bots paused first by
    another writer (``paused``: that bot; else one of that append's)."""
    desk = Desk(url, 2 if nth > 1 else None)
    other = open_trading(url, clock=SteppingClock(T0, timedelta(seconds=1)),
                         ids=SequentialIds("other"))
    chosen = []

    def pause(stored_events):
        chosen.append(paused or bot_in(desk.trading, stored_events))
        other.pause_bot(chosen[0], actor="u1")

    race = OnAppend(desk.trading, nth, pause)
    for i in range(CANDLES):
        race.armed = i == at
        desk.candle(candles, i)
    other.close()
    return desk, chosen[0]


def test_an_append_sent_ahead_refused_by_a_race_loses_nothing_and_respects_the_race(
        postgres_url, tmp_path, candles):
    """Another writer pauses a bot of the candle's second append (sent ahead) before it is
    stored: the first append stays stored, the refused one and those after it are decided
    again from the log. The outcome is the one-append engine's facing the same race."""
    at = busy(candles, tmp_path)
    ahead, bot_id = raced(postgres_url, candles, at, nth=2)
    once, _ = raced(f"sqlite:///{tmp_path / 'once.sqlite'}", candles, at, nth=1,
                    paused=bot_id)
    assert ahead.appends >= 3, "the candle went in several appends"
    assert ahead.trading.get_bot(bot_id).status is BotStatus.PAUSED, "the race is respected"
    assert_nothing_twice_or_skipped(ahead.trading)
    assert ahead.closes() == once.closes()
    ahead.trading.close()
    once.trading.close()


def test_an_append_sent_ahead_the_store_fails_is_stepped_again_before_the_next_candle(
        postgres_url, tmp_path, candles, caplog):
    """The connection is cut as the candle's second append (sent ahead) begins: nothing of
    it or of those after it is stored, the first stays. One APPEND_FAILED line; the markets
    it held step the candle before the next one, so the bots end as if nothing happened."""
    at = busy(candles, tmp_path)
    calm = Desk(f"sqlite:///{tmp_path / 'calm.sqlite'}", None)
    desk = Desk(postgres_url, 2)

    def cut(stored_events):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    failure = OnAppend(desk.trading, 2, cut)
    for i in range(CANDLES):
        calm.candle(candles, i)
        failure.armed = i == at
        head = desk.trading.recorder.max_notification_id()
        with caplog.at_level(logging.ERROR), contextlib.suppress(psycopg.OperationalError):
            desk.candle(candles, i)
        if i == at:
            stored_at_failure = desk.trading.recorder.max_notification_id() - head
            said = [r.getMessage() for r in caplog.records if r.name.startswith("tradetape")]
    assert stored_at_failure > 0, "the append before the cut one stayed stored"
    assert ["APPEND_FAILED" in m for m in said] == [True], said
    assert "nothing of it was stored" in said[0]
    assert_nothing_twice_or_skipped(desk.trading)
    assert desk.closes() == calm.closes()
    calm.trading.close()
    desk.trading.close()

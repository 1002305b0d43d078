"""A paper step costs what it changes (issue 15): a candle walks only the markets whose
levels it reaches, a bot with nothing to do is neither loaded nor saved, what a candle
changes is appended in one transaction, and a change another writer makes to a bot lands
on the next candle. The log is the same as walking every market on every candle."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

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
from domain.bots import BotStatus
from domain.dca import DcaConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PAIR = "BTC/USDT"
BASE = {"pair": PAIR, "base_order_quote": "100", "safety_order_quote": "50",
        "max_safety_orders": 3, "price_deviation_pct": "0.5", "safety_volume_scale": "1.5",
        "safety_step_scale": "1.2", "take_profit_pct": "0.6"}
# Configurations that differ, so the bots do not all act on the same candle.
CONFIGS = [
    BASE,
    {**BASE, "take_profit_pct": "1.1", "price_deviation_pct": "0.9", "stop_loss_pct": "3"},
    {**BASE, "take_profit_pct": "0.4", "trailing_take_profit_pct": "0.2"},
    {**BASE, "take_profit_pct": "0.3", "cooldown_seconds": 600},
    {**{k: v for k, v in BASE.items() if k != "take_profit_pct"},
     "take_profit_steps": [{"pct": "0.3", "volume_pct": "50"}, {"pct": "0.8", "volume_pct": "50"}],
     "stop_loss_pct": "2", "stop_loss_to_breakeven": True},
    {**BASE, "trailing_stop_loss": True, "stop_loss_pct": "1.5", "take_profit_pct": "2"},
]


@pytest.fixture(scope="module")
def candles():
    return load_candles(shipped_series("binance_BTC_USDT-1m-2025-11.csv"))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    return request.getfixturevalue("postgres_url")


def venue(pair: str, quote: Decimal, base: Decimal) -> PaperExchange:
    return PaperExchange(pair, quote_balance=quote, base_balance=base)


class WalkEveryMarket(PaperTrading):
    """Today's step without the index: every market of the pair walks every candle."""

    def _reached(self, pair, low, high):
        return {key for key in self._markets if key[1] == pair}


class Desk:
    """Three users, two bots each with differing configurations, on one store."""

    def __init__(self, url: str, runner=PaperTrading, bots: int = 6):
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.ids = SequentialIds("step-cost")
        self.trading = open_trading(url, clock=self.clock, ids=self.ids)
        self.bot_ids = []
        for k in range(bots):
            owner = f"u{k // 2}"
            if k % 2 == 0:
                account = self.trading.open_account(owner_id=owner, exchange="paper",
                                                    quote_asset="USDT")
                self.trading.deposit(account, "USDT", Decimal("5000"), actor=owner)
            bot_id = self.trading.create_bot(
                owner_id=owner, name=f"bot {k}", config=DcaConfig.from_mapping(
                    CONFIGS[k % len(CONFIGS)]), exchange_account_id=str(account))
            self.trading.start_bot(bot_id, actor=owner)
            self.bot_ids.append(bot_id)
        self.runner = runner(self.trading, self.ids, venue)
        self.runner.resume()

    def feed(self, candles, start: int, end: int) -> int:
        return sum(self.candle(*candles.exact(i), ts=int(candles.timestamps[i]))
                   for i in range(start, end))

    def candle(self, o, h, low, c, ts: int) -> int:
        return self.runner.on_candle(PAIR, ts, o, h, low, c, self.clock.now())

    def log(self) -> list[tuple[str, bytes]]:
        return [(n.topic, n.state) for n in read_log(self.trading)]

    def head(self) -> int:
        return self.trading.recorder.max_notification_id() or 0


def test_the_log_is_the_one_walking_every_market_gives(url, tmp_path, candles):
    indexed = Desk(url)
    everyone = Desk(f"sqlite:///{tmp_path / 'everyone.sqlite'}", WalkEveryMarket)
    indexed.feed(candles, 0, 1500)
    everyone.feed(candles, 0, 1500)
    log = indexed.log()
    assert sum(topic.endswith("Deal.Closed") for topic, _ in log) >= 5, "the bots traded"
    assert log == everyone.log()
    indexed.trading.close()
    everyone.trading.close()


def test_a_bot_no_level_reaches_is_neither_loaded_nor_saved(url, candles, monkeypatch):
    desk = Desk(url, bots=1)
    i = 0
    while desk.runner.engine_of(desk.bot_ids[0]).deal is None or i < 5:
        desk.feed(candles, i, i + 1)
        i += 1
    market = next(iter(desk.runner._markets.values()))
    below, above = market.venue.trigger_band(market)
    assert below is not None and above is not None
    loads, transactions = [], []
    real_get, real_insert = desk.trading.repository.get, desk.trading.recorder.insert_events
    monkeypatch.setattr(desk.trading.repository, "get",
                        lambda aggregate_id, **kw: loads.append(aggregate_id) or real_get(
                            aggregate_id, **kw))
    monkeypatch.setattr(desk.trading.recorder, "insert_events",
                        lambda events, **kw: transactions.append(events) or real_insert(
                            events, **kw))
    head = desk.head()
    tick = Decimal("0.01")
    inside = (below + tick, above - tick)  # a candle strictly inside the band
    for n in range(20):
        appended = desk.candle(inside[0] + tick, inside[1], inside[0], inside[1] - tick,
                               ts=10**12 + n * 60_000)
        assert appended == 0
    assert desk.head() == head
    assert desk.bot_ids[0] not in loads
    assert transactions == []
    # ...and a candle reaching its take profit steps it as before.
    assert desk.candle(above, above + tick, above - tick, above, ts=10**12 + 21 * 60_000) > 0
    assert desk.runner.engine_of(desk.bot_ids[0]).deal is None or transactions
    desk.trading.close()


def test_what_a_candle_changes_is_appended_in_one_transaction(url, candles, monkeypatch):
    desk = Desk(url)
    transactions = []
    real_insert = desk.trading.recorder.insert_events
    monkeypatch.setattr(desk.trading.recorder, "insert_events",
                        lambda events, **kw: transactions.append(len(events)) or real_insert(
                            events, **kw))
    changed = 0
    for i in range(0, 400):
        before = len(transactions)
        appended = desk.feed(candles, i, i + 1)
        assert len(transactions) - before == (1 if appended else 0)
        assert sum(transactions[before:]) == appended
        changed += appended > 0
    first = transactions[0]
    assert first >= 6 * 3, "the first close opened a deal for every bot, in one transaction"
    assert 0 < changed < 400, "candles that change nothing write nothing"
    desk.trading.close()


def test_a_change_another_writer_makes_is_seen_on_the_next_candle(url, candles):
    desk = Desk(url, bots=1)
    desk.feed(candles, 0, 1)
    bot_id = desk.bot_ids[0]
    assert desk.runner.engine_of(bot_id).deal is not None
    # another process (its own application on the same database) pauses the bot
    other = open_trading(url, clock=desk.clock, ids=SequentialIds("other-writer"))
    other.pause_bot(bot_id, actor="u0")
    other.close()
    desk.feed(candles, 1, 2)
    assert desk.runner.engine_of(bot_id).bot.status is BotStatus.PAUSED
    # it finishes its open deal, opens no new one, and is no longer traded
    desk.feed(candles, 2, 1500)
    bot = desk.trading.get_bot(bot_id)
    assert bot.open_deal_id is None and bot.status is BotStatus.PAUSED
    assert bot.deals_finished == 1
    assert bot_id not in desk.runner.bot_ids
    desk.trading.close()


def test_the_runner_does_not_read_its_own_appends_back(url, candles, monkeypatch):
    desk = Desk(url)
    reads = []
    real_select = desk.trading.recorder.select_notifications
    monkeypatch.setattr(desk.trading.recorder, "select_notifications",
                        lambda *a, **kw: reads.append(a) or real_select(*a, **kw))
    assert desk.feed(candles, 0, 1) >= 6 * 3, "the first close opened every bot's deal"
    reads.clear()
    desk.feed(candles, 1, 2)
    assert reads == [], "its own events are not looked at again for other writers' changes"


def test_the_first_close_asks_for_the_owners_risk_limits_in_one_query(postgres_url,
                                                                       candles):
    """(PostgreSQL: SQLite's many-ids load reads one aggregate at a time, locally.)"""
    from application.risk_limits import RiskLimits
    from domain.risk import UserRisk

    desk = Desk(postgres_url, runner=lambda trading, ids, venue: PaperTrading(
        trading, ids, venue, risk=RiskLimits(trading)))
    asked = []
    real_load, real_many = desk.trading.load, desk.trading.load_many
    desk.trading.load = lambda i, kind: asked.append(kind) or real_load(i, kind)
    desk.trading.load_many = lambda ids, kind: asked.append(kind) or real_many(ids, kind)
    assert desk.feed(candles, 0, 1) >= 6 * 3, "every bot of the three owners opened a deal"
    assert asked.count(UserRisk) == 1
    desk.feed(candles, 1, 300)
    assert asked.count(UserRisk) == 1, "owners without limits are not asked about again"
    desk.trading.close()


def test_a_pause_given_while_a_candle_is_stepped_lands_on_the_next(url, candles):
    desk = Desk(url)
    other = open_trading(url, clock=desk.clock, ids=SequentialIds("other-writer"))
    real_append = desk.trading.append_positions
    paused = []

    def append_after_a_pause(events):  # stored just before the candle's own events
        untouched = [b for b in desk.bot_ids if b not in {e.originator_id for e in events}]
        if not paused and untouched:
            other.pause_bot(untouched[0], actor="u0")
            paused.append(untouched[0])
        return real_append(events)

    desk.feed(candles, 0, 1)
    desk.trading.append_positions = append_after_a_pause
    i = 1
    while not paused:
        desk.feed(candles, i, i + 1)
        i += 1
    assert desk.runner.engine_of(paused[0]).bot.status is BotStatus.RUNNING
    desk.feed(candles, i, i + 1)
    engine = desk.runner.engine_of(paused[0])
    assert engine is None or engine.bot.status is BotStatus.PAUSED
    assert paused[0] not in desk.runner.bot_ids or engine.deal is not None
    other.close()
    desk.trading.close()


@pytest.mark.parametrize("config", [CONFIGS[2], CONFIGS[4], CONFIGS[5]],
                         ids=["trailing take profit", "steps", "trailing stop"])
def test_paper_trading_closes_the_deals_the_backtest_closes(tmp_path, candles, config):
    """The engine stays in memory between candles, as in a backtest: a trailing take
    profit's highest price is followed across candles (loading the bot again at every
    candle used to start it over from the recorded start)."""
    from adapters.exchanges.paper import DEFAULT_FEE_RATE
    from application.backtest import run_backtest

    def closed(trading) -> list[tuple]:
        return [(e.reason, e.price, e.realized_pnl) for n in read_log(trading)
                if n.topic.endswith("Deal.Closed")
                for e in [trading.mapper.to_domain_event(n)]]

    span = candles.between(int(candles.timestamps[0]), int(candles.timestamps[3000]))
    paper = Desk(f"sqlite:///{tmp_path / 'paper.sqlite'}", bots=1)
    paper.trading.edit_bot_config(paper.bot_ids[0], DcaConfig.from_mapping(config))
    paper.runner._see_other_writers()  # (the edit before the first candle)
    paper.feed(span, 0, len(span))
    backtest = open_trading(f"sqlite:///{tmp_path / 'backtest.sqlite'}")
    run_backtest(span, DcaConfig.from_mapping(config), venue=PaperExchange(
        PAIR, fee_rate=DEFAULT_FEE_RATE, quote_balance=Decimal("5000")),
        ids=SequentialIds("bt"), append=backtest.append_collected, run_seed="bt",
        fee_rate=DEFAULT_FEE_RATE, balance=Decimal("5000"))
    assert closed(backtest), "the bot closed deals"
    assert closed(paper.trading) == closed(backtest)


def test_a_rename_by_another_writer_keeps_a_trailing_take_profit_where_it_was(tmp_path,
                                                                               candles):
    """A bot loaded again (another writer renamed it) with the same configuration goes on
    following the highest price its trailing take profit saw: the log equals the one of a
    bot nobody renamed, but for the rename."""
    span = candles.between(int(candles.timestamps[0]), int(candles.timestamps[3000]))
    logs = []
    for renamed in (False, True):
        url = f"sqlite:///{tmp_path / f'renamed-{renamed}.sqlite'}"
        desk = Desk(url, bots=1)
        desk.trading.edit_bot_config(desk.bot_ids[0], DcaConfig.from_mapping(CONFIGS[2]))
        desk.runner._see_other_writers()
        for i in range(len(span)):
            engine = desk.runner.engine_of(desk.bot_ids[0])
            exits = engine._exits if engine.deal is not None else None
            if renamed and exits is not None and exits.tp_highest is not None and i % 7 == 0:
                other = open_trading(url, clock=desk.clock, ids=SequentialIds(f"r{i}"))
                other.rename_bot(desk.bot_ids[0], f"renamed {i}")
                other.close()
            desk.feed(span, i, i + 1)
        logs.append([(e.reason, e.price) for n in read_log(desk.trading)
                     if n.topic.endswith("Deal.Closed")
                     for e in [desk.trading.mapper.to_domain_event(n)]])
        desk.trading.close()
    assert any(reason.value == "trailing_take_profit" for reason, _ in logs[0])
    assert logs[1] == logs[0]


def race_once(desk: Desk, url: str, bot_id, actor: str):
    """Another process pauses ``bot_id`` while the runner steps the next candle: after its
    look at the log, before its append (billing pausing a bot, a user's command)."""
    other = open_trading(url, clock=desk.clock, ids=SequentialIds("racer"))
    real = desk.runner._reached

    def racing(pair, low, high):
        desk.runner._reached = real
        other.pause_bot(bot_id, actor=actor)
        return real(pair, low, high)

    desk.runner._reached = racing
    return other


def as_traded(desk: Desk, first: int) -> list[tuple]:
    """The log from position ``first`` as a trader reads it: each event's kind, its bot or
    version, cause and figures, without the ids the runner drew (a refused step drew some,
    so the next ones differ) and the seconds the test's clock ticked."""
    bots = {bot_id: f"bot {k}" for k, bot_id in enumerate(desk.bot_ids)}
    drawn = {"timestamp", "client_order_id", "exchange_order_id", "trade_id"}
    return [(n.topic, bots.get(n.originator_id, n.originator_version), sorted(
        (k, bots.get(v, "an id") if isinstance(v, UUID) else v)
        for k, v in vars(desk.trading.mapper.to_domain_event(n)).items() if k not in drawn))
        for n in read_log(desk.trading, first=first)]


def test_a_candle_another_writer_raced_is_stepped_again_and_stored_whole_once(url, tmp_path,
                                                                              candles):
    """Another writer pauses a bot between the look at the log and the candle's append: the
    candle's transaction is refused whole, the runner rebuilds those bots from the log and
    steps the same candle again. It is stored once, whole, as a first step after the pause
    stores it (the paused bot opens no deal, the other one does), and trading goes on alike
    with no order placed twice."""
    raced = Desk(url, bots=2)
    calm = Desk(f"sqlite:///{tmp_path / 'calm.sqlite'}", bots=2)
    paused = raced.bot_ids[0]
    starts = raced.head() + 1, calm.head() + 1
    other = race_once(raced, url, paused, "u0")
    appended = raced.feed(candles, 0, 1)
    other.close()
    before = open_trading(f"sqlite:///{tmp_path / 'calm.sqlite'}", clock=calm.clock,
                          ids=SequentialIds("racer"))
    before.pause_bot(paused, actor="u0")  # the same pause, stored before the candle
    before.close()
    calm.feed(candles, 0, 1)
    stored = [n.topic for n in read_log(raced.trading, first=starts[0])]
    assert stored[0].endswith("Bot.Paused") and len(stored) == 1 + appended, \
        "the pause, then the candle's events, once"
    assert appended >= 3, "the bot nobody raced with opened its deal on that candle"
    assert raced.runner.engine_of(raced.bot_ids[1]).deal is not None
    assert paused not in raced.runner.bot_ids  # paused, no deal: loaded again as it is
    assert as_traded(raced, starts[0]) == as_traded(calm, starts[1])
    raced.feed(candles, 1, 600)
    calm.feed(candles, 1, 600)
    assert as_traded(raced, starts[0]) == as_traded(calm, starts[1])
    assert raced.trading.get_bot(paused).deals_opened == 0
    assert raced.trading.get_bot(raced.bot_ids[1]).deals_opened >= 1
    placed = [n.originator_id for n in read_log(raced.trading)
              if n.topic.endswith("Order.Submitted")]
    assert placed and len(placed) == len(set(placed))
    raced.trading.close()
    calm.trading.close()


@settings(max_examples=6, deadline=None)
@given(at=st.integers(0, 300), paused=st.sampled_from([0, 1]))
def test_a_race_on_any_candle_stores_what_a_pause_before_it_stores(candles, at, paused):
    """Whichever candle another writer pauses a bot during (its append refused when the
    candle changed that bot, stored as it is when not), the log is the one of the same
    pause given just before that candle, event for event, ids drawn aside."""
    with tempfile.TemporaryDirectory() as folder:
        urls = [f"sqlite:///{Path(folder) / name}" for name in ("raced.sqlite", "calm.sqlite")]
        raced, calm = Desk(urls[0], bots=2), Desk(urls[1], bots=2)
        starts = raced.head() + 1, calm.head() + 1
        raced.feed(candles, 0, at)
        calm.feed(candles, 0, at)
        bot_id = raced.bot_ids[paused]
        other = race_once(raced, urls[0], bot_id, "u0")
        before = open_trading(urls[1], clock=calm.clock, ids=SequentialIds("racer"))
        before.pause_bot(bot_id, actor="u0")
        raced.feed(candles, at, at + 100)
        calm.feed(candles, at, at + 100)
        logs = as_traded(raced, starts[0]), as_traded(calm, starts[1])
        for trading in (other, before, raced.trading, calm.trading):
            trading.close()
        assert logs[0] == logs[1]


def test_a_take_profit_a_raced_candle_reaches_is_filled(url, candles):
    """Another user's bot on the same pair is paused by another writer while a candle is
    stepped: the bot nobody raced with still gets the take profit that candle reached (the
    candle used to be lost for every bot of the pair: a missed fill)."""
    desk = Desk(url, bots=1)
    desk.feed(candles, 0, 1)
    trader = desk.bot_ids[0]
    deal = desk.runner.engine_of(trader).deal
    opened_at, target = deal.entry_price, deal.take_profit_price
    assert target > opened_at
    account = desk.trading.open_account(owner_id="u9", exchange="paper", quote_asset="USDT")
    desk.trading.deposit(account, "USDT", Decimal("5000"), actor="u9")
    late = desk.trading.create_bot(owner_id="u9", name="late", exchange_account_id=str(
        account), config=DcaConfig.from_mapping(BASE))
    desk.trading.start_bot(late, actor="u9")
    desk.runner.follow(late)  # its first close opens its deal: its bot is saved
    other = race_once(desk, url, late, "u9")
    ts = int(candles.timestamps[1])
    tick = Decimal("0.01")
    assert desk.candle(opened_at, target + tick, opened_at, target + tick, ts=ts) > 0
    other.close()
    closed = [desk.trading.mapper.to_domain_event(n) for n in read_log(desk.trading)
              if n.topic.endswith("Deal.Closed") and n.originator_id == deal.id]
    assert [(e.correlation_id, e.price) for e in closed] == [(f"paper:{PAIR}:{ts}", target)]
    assert desk.trading.get_bot(trader).deals_finished == 1
    raced = desk.trading.get_bot(late)
    assert raced.status is BotStatus.PAUSED and raced.deals_opened == 0
    assert late not in desk.runner.bot_ids
    desk.trading.close()


def test_a_risk_limit_another_writer_sets_applies_from_the_next_candle(url, candles):
    """The risk limits remember which owners have none (no query per buy for them); a limit
    another process sets is seen on the next candle all the same."""
    from application.risk_limits import RiskLimits

    clock = SteppingClock(T0, timedelta(seconds=1))
    trading = open_trading(url, clock=clock, ids=SequentialIds("risk"))
    account = trading.open_account(owner_id="u0", exchange="paper", quote_asset="USDT")
    trading.deposit(account, "USDT", Decimal("5000"), actor="u0")
    bot_id = trading.create_bot(owner_id="u0", name="bot", config=DcaConfig.from_mapping(
        {**BASE, "take_profit_pct": "0.2"}), exchange_account_id=str(account))
    trading.start_bot(bot_id, actor="u0")
    runner = PaperTrading(trading, SequentialIds("risk-runner"), venue,
                          risk=RiskLimits(trading))
    runner.resume()
    i = 0
    while trading.get_bot(bot_id).deals_finished == 0:  # a deal opened and closed: no limit
        o, h, low, c = candles.exact(i)
        runner.on_candle(PAIR, int(candles.timestamps[i]), o, h, low, c, clock.now())
        i += 1
    other = open_trading(url, clock=clock, ids=SequentialIds("other-risk"))
    RiskLimits(other).set_limits("u0", {"maxOpenDeals": 0}, actor="u0")
    other.close()
    opened = trading.get_bot(bot_id).deals_opened
    for j in range(i, i + 1500):  # the open deal closes; no other opens
        o, h, low, c = candles.exact(j)
        runner.on_candle(PAIR, int(candles.timestamps[j]), o, h, low, c, clock.now())
    bot = trading.get_bot(bot_id)
    assert bot.open_deal_id is None and bot.deals_opened == opened
    assert any(n.topic.endswith("Bot.RiskLimitReached") for n in read_log(trading))
    trading.close()

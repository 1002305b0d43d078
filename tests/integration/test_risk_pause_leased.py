"""Engine workers and the daily loss limit: a user's accounts traded by two workers (for a
while: a user's bots are leased together, but a lapsed lease is adopted at once). The
worker whose bot's loss reaches the limit counts it and pauses the bots it holds; it cannot
write for the bot another worker holds (its append would be refused whole, LEASE_LOST, and
the count and the pause lost), and need not: the limit, reached, refuses that bot's buys
wherever it trades. A new day lifts the halt at the first step of any worker that knows of
it; each paused bot is resumed by the worker that trades it (none waits for another's)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_engine_leases, open_trading
from application.leased_paper import ApiPaperTrading, LeasedPaperTrading
from application.replay import read_log
from application.risk_limits import RiskLimits
from application.settings import _connect_kwargs, parse_database_url
from domain.bots import BotStatus
from domain.dca import DcaConfig
from tests.integration.test_engine_leases import venue
from tests.integration.test_risk_limits import BOT, EVENING, LOSER, candles

__all__ = ["candles"]  # (the module's candles fixture)


class RiskWorker:
    """An engine worker as ``serve --role engine`` wires it, with the users' risk limits."""

    def __init__(self, url: str, name: str):
        self.trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                                    ids=SequentialIds(name))
        self.risk = RiskLimits(self.trading)
        self.paper = LeasedPaperTrading(self.trading, self.trading.ids, venue, risk=self.risk)
        self.leases = open_engine_leases(parse_database_url(url), self.trading, self.paper,
                                         seconds=60, worker=name)
        self.leases.store.join(60)

    def close(self) -> None:
        self.leases.store.leave()
        self.risk.holds.close()
        self.trading.close()


def seed(url: str) -> list:
    """User ``u1``: a losing bot on one paper account, a bot that holds its deal on
    another."""
    trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                           ids=SequentialIds("seed"))
    bots = []
    for n, config in enumerate((LOSER, BOT)):
        account = trading.open_account(owner_id="u1", exchange="paper", quote_asset="USDT")
        trading.deposit(account, "USDT", Decimal("10000"), actor="u1")
        bot_id = trading.create_bot(owner_id="u1", name=f"bot {n}",
                                    config=DcaConfig.from_mapping(config),
                                    exchange_account_id=str(account))
        trading.start_bot(bot_id, actor="u1")
        bots.append(bot_id)
    RiskLimits(trading).set_limits("u1", {"maxDailyLossQuote": "0.05"}, actor="u1")
    trading.close()
    return bots


def split(url: str, one: RiskWorker, two: RiskWorker, holder) -> None:
    """A user's bots split between two workers for a while (a user's bots move together,
    but a lease that lapsed is adopted at once by whichever worker sees it first): one
    takes both, the holder's lease lapses, two adopts it, one sees it gone."""
    one.leases.tick()
    expire(url, holder)
    two.leases.tick()
    one.leases.tick()


def test_the_worker_that_reaches_the_limit_pauses_what_it_holds(candles, postgres_url):
    loser, holder = seed(postgres_url)
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        split(postgres_url, one, two, holder)
        workers = {bot: w for w in (one, two) for bot in w.paper.bot_ids}
        assert set(workers) == {loser, holder} and workers[loser] is not workers[holder]
        for minute in range(59):  # 23:00 .. 23:58
            o, h, low, c = candles.exact(minute)
            for worker in (one, two):
                worker.paper.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h,
                                       low, c, EVENING + timedelta(minutes=minute))
        trading = workers[loser].trading
        assert trading.get_bot(loser).status is BotStatus.PAUSED
        assert workers[loser].risk.view("u1").paused_until is not None  # counted, reached
        assert trading.get_bot(holder).status is BotStatus.RUNNING  # its worker's to pause
    finally:
        one.close()
        two.close()


def test_two_workers_that_know_of_the_halt_lift_it_once_at_midnight(candles, postgres_url):
    """Both workers learnt of the halt (one counted it, the other read it in the log): the
    first step of the new day on each lifts what it can: the user's halt is lifted once
    (the second finds it lifted in the log), and only the bot the limit paused resumes."""
    loser, holder = seed(postgres_url)
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        split(postgres_url, one, two, holder)
        workers = {bot: w for w in (one, two) for bot in w.paper.bot_ids}
        for minute in range(61):  # 23:00 .. 00:00
            o, h, low, c = candles.exact(minute)
            for worker in (one, two):
                worker.paper.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h,
                                       low, c, EVENING + timedelta(minutes=minute))
            if minute == 58:
                assert workers[holder].risk.due(EVENING + timedelta(hours=1)) == ["u1"]
        trading = one.trading
        assert trading.get_bot(loser).status is BotStatus.RUNNING
        assert trading.get_bot(holder).status is BotStatus.RUNNING
        assert len(read_events(trading, "UserRisk.DailyLossLifted")) == 1
        assert [e.originator_id for e in read_events(trading, "Bot.RiskResumed")] == [loser]
        assert one.risk.view("u1").paused_until is None
    finally:
        one.close()
        two.close()


def paused_before_midnight(url: str, candles, beside=()):
    """``seed``, one worker trading both bots until 23:58: the loser's loss reaches the
    limit, both bots are paused (the holder with its deal open). Returns the bots, the
    worker and a function that feeds a worker (or any runner) the candle of a minute.
    ``beside``: runners made after the seed, fed the same candles."""
    loser, holder = seed(url)
    one = RiskWorker(url, "one")
    one.leases.tick()  # the only worker: takes both
    assert set(one.paper.bot_ids) == {loser, holder}
    others = [make(url) for make in beside]

    def candle(worker, minute: int) -> None:
        o, h, low, c = candles.exact(minute)
        paper = getattr(worker, "paper", worker)
        paper.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h, low, c,
                        EVENING + timedelta(minutes=minute))

    for minute in range(59):  # 23:00 .. 23:58: the limit reached, both paused
        for runner in (one, *others):
            candle(runner, minute)
    statuses = {one.trading.get_bot(b).status for b in (loser, holder)}
    assert statuses == {BotStatus.PAUSED}
    assert one.trading.get_bot(holder).open_deal_id is not None  # its deal open
    return loser, holder, one, candle, *others


def expire(url: str, bot_id) -> None:
    """The lease of ``bot_id`` renewed late: free for the next worker that ticks."""
    database = parse_database_url(url)
    with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
        conn.execute(f'UPDATE "{database.env["POSTGRES_SCHEMA"]}".engine_leases SET '
                     "expires_at = now() WHERE bot_id = %s", (bot_id,))


def test_a_new_day_lifts_at_once_and_each_worker_resumes_the_bots_it_trades(candles,
                                                                            postgres_url):
    """The paused holder (its deal open) moved to a second worker before midnight. The
    first step of the new day on the first worker lifts the user's halt and resumes the
    bot it may write; it writes nothing for the holder, and need not wait for it: the
    second worker, which never saw the limit reached, resumes it at its next step."""
    loser, holder, one, candle = paused_before_midnight(postgres_url, candles)
    two = None
    try:
        expire(postgres_url, holder)
        two = RiskWorker(postgres_url, "two")
        two.leases.tick()  # takes the holder, whose lease its worker let lapse
        one.leases.tick()  # sees it gone (and lets the loser go: no deal, nothing to trade)
        assert two.paper.bot_ids == {holder} and one.paper.bot_ids == set()
        trading = one.trading
        for worker in (one, two):
            candle(worker, 59)

        candle(one, 60)  # 00:00 UTC: a new day
        assert one.risk.view("u1").paused_until is None  # the halt lifted at once
        assert trading.get_bot(loser).status is BotStatus.RUNNING
        assert trading.get_bot(holder).status is BotStatus.PAUSED  # two's to write
        assert one.leases.holds(loser) and not one.leases.holds(holder)
        candle(one, 61)  # still due on one, while the holder is paused: nothing written
        assert trading.get_bot(holder).status is BotStatus.PAUSED

        candle(two, 60)  # two's next step: it read the lift in the log
        assert trading.get_bot(holder).status is BotStatus.RUNNING
        assert two.leases.holds(holder) and holder in two.paper.bot_ids
        resumed = [e for e in read_events(trading, "Bot.RiskResumed")]
        assert sorted(e.originator_id for e in resumed) == sorted([loser, holder])
        candle(one, 62)
        assert one.risk.due(EVENING + timedelta(minutes=62)) == []  # nothing left to do
    finally:
        one.close()
        if two is not None:
            two.close()


def test_a_paused_bot_whose_worker_left_is_resumed_by_the_one_that_lifted(candles,
                                                                         postgres_url):
    """The lift left the holder to the worker trading it, which stopped before its next
    step: the lifting worker takes the bot once it is free and resumes it."""
    loser, holder, one, candle = paused_before_midnight(postgres_url, candles)
    two = None
    try:
        expire(postgres_url, holder)
        two = RiskWorker(postgres_url, "two")
        two.leases.tick()
        one.leases.tick()
        candle(one, 60)  # the halt lifted, the holder left to two
        trading = one.trading
        assert trading.get_bot(holder).status is BotStatus.PAUSED
        two.close()  # gone before it stepped again: the holder's lease let go
        two = None
        candle(one, 61)
        assert trading.get_bot(holder).status is BotStatus.RUNNING
        assert one.leases.holds(holder) and holder in one.paper.bot_ids
        assert trading.get_bot(loser).status is BotStatus.RUNNING
    finally:
        one.close()
        if two is not None:
            two.close()


def test_an_api_process_writes_no_lift(candles, postgres_url):
    """A ``--role api`` process steps the candles too and reads the halt in the log, but
    trades nothing: it writes no lift, no bot of the user's (it holds no lease); the engine
    worker does."""
    def api_runner(url: str) -> ApiPaperTrading:
        trading = open_trading(url, clock=SteppingClock(EVENING, timedelta(seconds=1)),
                               ids=SequentialIds("api"))
        return ApiPaperTrading(trading, trading.ids, venue, risk=RiskLimits(trading))

    loser, holder, one, candle, api = paused_before_midnight(postgres_url, candles,
                                                             [api_runner])
    try:
        trading = one.trading
        for minute in (59, 60, 61):  # 23:59 .. 00:01
            candle(api, minute)
        assert api.appended == 0
        assert {trading.get_bot(b).status for b in (loser, holder)} == {BotStatus.PAUSED}
        assert one.risk.view("u1").paused_until is not None
        candle(one, 60)
        assert {trading.get_bot(b).status for b in (loser, holder)} == {BotStatus.RUNNING}
    finally:
        one.close()
        api.trading.close()


def read_events(trading, suffix: str) -> list:
    return [trading.mapper.to_domain_event(n) for n in read_log(trading)
            if n.topic.endswith(suffix)]

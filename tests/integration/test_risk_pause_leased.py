"""Engine workers and the daily loss limit: a user's accounts traded by two workers. The
worker whose bot's loss reaches the limit counts it and pauses the bots it holds; it cannot
write for the bot another worker holds (its append would be refused whole, LEASE_LOST, and
the count and the pause lost), and need not: the limit, reached, refuses that bot's buys
wherever it trades."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import psycopg

from adapters.clock import SequentialIds, SteppingClock
from application.bootstrap import open_engine_leases, open_trading
from application.leased_paper import LeasedPaperTrading
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


def test_the_worker_that_reaches_the_limit_pauses_what_it_holds(candles, postgres_url):
    loser, holder = seed(postgres_url)
    one, two = RiskWorker(postgres_url, "one"), RiskWorker(postgres_url, "two")
    try:
        one.leases.tick()  # takes both, then gives one account to the second
        two.leases.tick()
        one.leases.tick()
        two.leases.tick()
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


def test_a_new_day_resumes_only_through_the_lease(candles, postgres_url):
    """The worker that paused the user's bots lost one bot's lease before midnight: it
    writes nothing for that bot (nor the lift, one transaction), and tries again at each
    step; once the bot is free it takes the lease and resumes them all."""
    loser, holder = seed(postgres_url)
    one, two = RiskWorker(postgres_url, "one"), None
    try:
        one.leases.tick()  # the only worker: takes both
        assert set(one.paper.bot_ids) == {loser, holder}

        def candle(minute: int) -> None:
            o, h, low, c = candles.exact(minute)
            one.paper.on_candle("BTC/USDT", int(candles.timestamps[minute]), o, h, low, c,
                                EVENING + timedelta(minutes=minute))

        for minute in range(59):  # 23:00 .. 23:58: the limit reached, both paused
            candle(minute)
        trading = one.trading
        assert {trading.get_bot(b).status for b in (loser, holder)} == {BotStatus.PAUSED}
        database = parse_database_url(postgres_url)
        with psycopg.connect(**_connect_kwargs(database.env), autocommit=True) as conn:
            conn.execute(f'UPDATE "{database.env["POSTGRES_SCHEMA"]}".engine_leases SET '
                         "expires_at = now() WHERE bot_id = %s", (loser,))  # renewed late
        two = RiskWorker(postgres_url, "two")
        assert loser in two.leases.store.acquire([loser], 60)  # two trades it now

        candle(59)
        candle(60)  # 00:00 UTC: a new day, the loser's lease is two's
        assert {trading.get_bot(b).status for b in (loser, holder)} == {BotStatus.PAUSED}
        assert one.risk.view("u1").paused_until is not None  # nothing lifted either

        two.leases.store.release([loser])  # two lets it go (it does not trade it)
        candle(61)
        assert {trading.get_bot(b).status for b in (loser, holder)} == {BotStatus.RUNNING}
        assert one.risk.view("u1").paused_until is None
        assert one.leases.holds(loser)
    finally:
        one.close()
        if two is not None:
            two.close()

"""An account whose bots two engine workers share (each trades the bot it leases) is
reconciled by one of them, against every open deal of the account: the other worker's
bot's units count too. BTC taken off the exchange outside Tradetape, as much as the other
worker's deal holds, is drift, reported once; before it, no round of either reports any.
Two runners on one PostgreSQL schema, each following one bot and reconciling with turns of
its own (two processes' connections), on the real ccxt client against the local exchange
simulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pytest

from adapters.event_store.task_board import PostgresTaskLock
from adapters.exchanges.paper import PaperExchange
from application.paper_trading import PaperTrading
from application.reconciliation import Reconciler
from application.settings import parse_database_url
from domain.dca import DcaConfig
from tests.exchange_simulator import running_simulator
from tests.integration.test_live_trading import BOT, LiveWorld, candles  # noqa: F401

pytestmark = pytest.mark.timeout(180)


class TwoWorkers(LiveWorld):
    """The account's second bot; each runner follows one bot, as a worker its lease."""

    def _runner(self) -> PaperTrading:
        self.second_bot = self.trading.create_bot(
            owner_id="u1", name="second bot", config=DcaConfig.from_mapping(BOT),
            exchange_account_id=str(self.account))
        self.trading.start_bot(self.second_bot, actor="u1")
        self.other = self._follower(self.second_bot)
        return self._follower(self.bot_id)

    def _follower(self, bot_id) -> PaperTrading:
        runner = PaperTrading(self.trading, self.trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=self._venues)
        runner.follow(bot_id)
        return runner

    def feed(self, series, start: int, end: int) -> None:
        for i in range(start, end):
            ts = int(series.timestamps[i])
            self.sim.set_time(ts + 60_000)
            o, h, low, c = series.exact(i)
            for runner in (self.runner, self.other):
                runner.on_candle("BTC/USDT", ts, o, h, low, c, self.clock.now())

    def units(self, runner: PaperTrading) -> Decimal:
        deal = runner.engines_of(str(self.account))[0].deal
        return deal.units if deal is not None else Decimal(0)


def test_drift_is_seen_against_every_worker_s_deals_once(postgres_url, candles):  # noqa: F811
    database = parse_database_url(postgres_url)
    with running_simulator(speed=0) as sim:
        world = TwoWorkers(postgres_url, sim)
        account = str(world.account)
        i = 0
        while not (world.units(world.runner) and world.units(world.other)):
            world.feed(candles, i, i + 1)
            i += 1
        turns = [PostgresTaskLock(database, "reconciliation") for _ in range(2)]
        first = Reconciler(world.runner, turns=turns[0])
        second = Reconciler(world.other, turns=turns[1])
        try:
            at = world.clock.now()
            for minute in range(3):  # both workers' rounds: the first one's account
                first.run(at + timedelta(minutes=minute))
                second.run(at + timedelta(minutes=minute))
            assert account in first.accounts and second.accounts == {}
            assert first.accounts[account].status == "ok"
            assert not world.events("DriftDetected")  # the other's deal counted, not missed

            # BTC leaves the exchange outside Tradetape: as much as the second worker's
            # deal holds (the first worker's own deal is still all there)
            mine, theirs = world.units(world.runner), world.units(world.other)
            client = world.runner.live_markets()[0][2].exchange.client
            client.create_order("BTC/USDT", "market", "sell",
                                str(theirs.quantize(Decimal("0.00001"), rounding=ROUND_DOWN)))
            for minute in range(3, 6):
                first.run(at + timedelta(minutes=minute))
                second.run(at + timedelta(minutes=minute))
            drift = world.events("DriftDetected")
            assert [(e.asset, e.expected) for e in drift] == [("BTC", mine + theirs)]
            assert drift[0].observed < mine + theirs - theirs / 2
            assert first.health()[0] == "amber"
            assert first.accounts[account].status == "drift"

            turns[0].release()  # the first worker stops: the second takes the account
            second.run(at + timedelta(minutes=6))
            assert second.accounts[account].status == "drift"
            assert len(world.events("DriftDetected")) == 1  # reported once, not again
        finally:
            for turn in turns:
                turn.release()
            world.trading.close()

"""Positions on a live (sandbox) account, through the real ccxt binance class against the
local exchange simulator: the same desk and events as on paper, the OCO's take profit
resting on the exchange and its stop emulated, each order sent once by its client id,
every exchange trade in the log once, and what a fee in BTC takes out of the units held."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.positions import Positions, Trail
from application.reconciliation import Reconciler
from application.replay import read_log
from domain.accounts import AccountKind
from domain.errors import DomainError
from domain.positions import ExitStatus, Position, PositionExit, PositionStatus
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator
from tests.exchange_simulator.venues import simulator_venue
from tests.stubs import a_verified_user

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = 60_000
OWNER = UUID("00000000-0000-4000-8000-0000000000aa")
D = Decimal
pytestmark = pytest.mark.timeout(300)


class LiveDesk:
    def __init__(self, url: str, sim):
        self.sim = sim
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.trading = open_trading(url, clock=self.clock, ids=SequentialIds("live-pos"))
        self.trading.save_all(a_verified_user(OWNER))  # live trading needs a verified email
        self.account = str(self.trading.open_account(
            owner_id=str(OWNER), exchange="binance", quote_asset="USDT",
            kind=AccountKind.LIVE))
        self.runner = PaperTrading(self.trading, self.trading.ids,
                                   lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                                   live_venues=self._venue)
        self.positions = Positions(self.trading, self.runner, allow_live=True)
        self.candles = load_candles(str(BTC_USDT_CANDLES))
        self.i = 0

    def restart(self, url: str, seed: str) -> None:
        """A new process: the store reopened, positions resumed from their events."""
        self.trading.close()
        self.trading = open_trading(url, clock=self.clock, ids=SequentialIds(seed))
        self.runner = PaperTrading(self.trading, self.trading.ids,
                                   lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                                   live_venues=self._venue)
        self.runner.resume()
        self.positions = Positions(self.trading, self.runner, allow_live=True)
        self.positions.resume()

    def _venue(self, account, pair):
        return simulator_venue(self.sim, str(account.id), pair)

    def feed(self, count: int = 1) -> None:
        for _ in range(count):
            ts = int(self.candles.timestamps[self.i])
            self.sim.set_time(ts + MINUTE)
            o, h, low, c = self.candles.exact(self.i)
            self.runner.on_candle("BTC/USDT", ts, o, h, low, c, self.clock.now())
            self.i += 1

    def until_done(self, exit_id: UUID, limit: int = 3000) -> PositionExit:
        for _ in range(limit):
            self.feed()
            group = self.trading.load(exit_id, PositionExit)
            if not group.is_active:
                return group
        raise AssertionError("the exit never filled")

    def events(self, *names: str) -> list:
        return [self.trading.mapper.to_domain_event(n) for n in read_log(self.trading)
                if n.topic.rsplit(".", 1)[-1] in names]


def test_positions_on_a_live_account_trade_once_on_the_exchange_as_on_paper(tmp_path):
    with running_simulator(speed=0) as sim:
        world = LiveDesk(f"sqlite:///{tmp_path / 'live.sqlite'}", sim)
        world.feed(2)
        world.trading.save_all(a_verified_user(UUID(int=7), verified=False))
        theirs = str(world.trading.open_account(owner_id=str(UUID(int=7)), exchange="binance",
                                                quote_asset="USDT", kind=AccountKind.LIVE))
        with pytest.raises(DomainError) as refused:
            world.positions.open_position(UUID(int=7), exchange_account_id=theirs,
                                          pair="BTC/USDT", quote_amount=D(100))
        assert refused.value.code == "EMAIL_NOT_VERIFIED"
        position = world.positions.open_position(
            OWNER, exchange_account_id=world.account, pair="BTC/USDT", quote_amount=D(100))
        [buy] = world.events("TradeObserved")
        assert buy.fee_currency == "BTC"  # Binance takes a buy's fee in what it bought
        assert position.units == buy.amount - buy.fee  # what the account really holds
        price = position.entry_price
        group = world.positions.add_oco(OWNER, position.id,
                                        take_profit_price=price * D("1.001"),
                                        stop_price=price * D("0.97"))
        done = world.until_done(group.id)
        assert (done.status, done.leg) == (ExitStatus.FILLED, "take_profit")
        kinds = [type(e).__name__ for e in world.trading.events.get(group.id)]
        assert kinds == ["Attached", "LegFilled", "LegCancelled"]
        closed = world.trading.load(position.id, Position)
        assert closed.status is PositionStatus.CLOSED and closed.units == 0
        dust = [e.amount for e in world.trading.events.get(position.id)
                if type(e).__name__ == "DustLeft"]
        # the exchange sells in whole amount steps: what is below one stays, as dust
        assert len(dust) == 1 and D(0) < dust[0] < D("0.00001")

        second = world.positions.open_position(
            OWNER, exchange_account_id=world.account, pair="BTC/USDT", quote_amount=D(100))
        trailing = world.positions.add_trailing_stop(OWNER, second.id,
                                                     trail=Trail(percent=D("0.2")))
        done = world.until_done(trailing.id)
        assert (done.status, done.leg) == (ExitStatus.FILLED, "trailing")
        assert world.trading.load(second.id, Position).status is PositionStatus.CLOSED

        ledger = sim.ledger()
        observed = world.events("TradeObserved")
        assert Counter(e.trade_id for e in observed) == Counter(
            str(t.trade_id) for t in ledger.trades)
        assert len(ledger.trades) >= 4
        assert all(n == 1 for n in sim.client_order_ids_seen().values())
        assert not world.events("Filled", "Accepted")  # observations, not the paper's words

        third = world.positions.open_position(
            OWNER, exchange_account_id=world.account, pair="BTC/USDT", quote_amount=D(100))
        reconciler = Reconciler(world.runner)
        reconciler.run(T0)
        assert not world.events("DriftDetected")  # the position's units are accounted for
        venue = world.runner.live_markets()[0][2]
        venue.exchange.client.create_order("BTC/USDT", "market", "sell", "0.0005")
        reconciler.run(T0 + timedelta(minutes=1))  # seen once: a race, maybe
        reconciler.run(T0 + timedelta(minutes=2))  # still short a round later: drift
        [drift] = world.events("DriftDetected")
        assert drift.expected == third.units  # sold outside Tradetape: the position is short
        with pytest.raises(DomainError) as refused:  # the exchange has less to sell
            world.positions.close_position(OWNER, third.id)
        assert refused.value.code == "CLOSE_REJECTED"
        assert world.trading.load(third.id, Position).status is PositionStatus.OPEN

        world.trading.close()


def test_a_restarted_runner_carries_on_with_the_exchanges_resting_take_profit(tmp_path):
    url = f"sqlite:///{tmp_path / 'restart.sqlite'}"
    with running_simulator(speed=0) as sim:
        world = LiveDesk(url, sim)
        world.feed(2)
        position = world.positions.open_position(
            OWNER, exchange_account_id=world.account, pair="BTC/USDT", quote_amount=D(100))
        price = position.entry_price
        group = world.positions.add_oco(OWNER, position.id,
                                        take_profit_price=price * D("1.002"),
                                        stop_price=price * D("0.9"))
        world.restart(url, "after-restart")
        done = world.until_done(group.id)
        assert (done.status, done.leg) == (ExitStatus.FILLED, "take_profit")
        assert world.trading.load(position.id, Position).status is PositionStatus.CLOSED
        assert all(n == 1 for n in sim.client_order_ids_seen().values())
        assert len(sim.ledger().trades) == len(world.events("TradeObserved"))
        world.trading.close()

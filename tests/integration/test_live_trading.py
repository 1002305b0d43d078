"""Live trading through the real ccxt binance class against the local exchange simulator:
the same engine and runner as paper trading, the exchange's fills recorded as observations,
every fill in the log once, realized P/L equal to the exchange's own ledger, and a runner
restarted after a pause records what filled while it was down at the exchange's times."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.paper import PaperExchange
from adapters.marketdata.csv_candles import load_candles
from application.bootstrap import open_trading
from application.paper_trading import PaperTrading
from application.reconciliation import Reconciler
from application.replay import read_log
from domain.accounts import AccountKind
from domain.dca import DcaConfig
from tests.exchange_simulator import BTC_USDT_CANDLES, running_simulator
from tests.exchange_simulator.venues import simulator_venue

BOT = {
    "pair": "BTC/USDT", "base_order_quote": "100", "safety_order_quote": "50",
    "max_safety_orders": 3, "price_deviation_pct": "0.3", "safety_volume_scale": "1.5",
    "safety_step_scale": "1.2", "take_profit_pct": "0.15",
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = 60_000


@pytest.fixture(scope="module")
def candles():
    return load_candles(str(BTC_USDT_CANDLES))


class LiveWorld:
    """A store with a live (sandbox) account on the simulator and one running bot."""

    def __init__(self, url: str, sim, seed: str = "live", config: dict = BOT):
        self.url, self.sim = url, sim
        self.clock = SteppingClock(T0, timedelta(seconds=1))
        self.trading = open_trading(url, clock=self.clock, ids=SequentialIds(seed))
        self.account = self.trading.open_account(owner_id="u1", exchange="binance",
                                                 quote_asset="USDT", kind=AccountKind.LIVE)
        self.bot_id = self.trading.create_bot(owner_id="u1", name="live bot",
                                              config=DcaConfig.from_mapping(config),
                                              exchange_account_id=str(self.account))
        self.trading.start_bot(self.bot_id, actor="u1")
        self.runner = self._runner()

    def _venues(self, account, pair):
        return simulator_venue(self.sim, str(account.id), pair)

    def _runner(self) -> PaperTrading:
        runner = PaperTrading(self.trading, self.trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=self._venues)
        runner.resume()
        return runner

    def restart(self, seed: str) -> None:
        self.trading.close()
        self.trading = open_trading(self.url, clock=self.clock, ids=SequentialIds(seed))
        self.runner = self._runner()

    def feed(self, candles, start: int, end: int) -> None:
        """Candles ``start..end-1`` close on the exchange, then reach the runner."""
        for i in range(start, end):
            ts = int(candles.timestamps[i])
            self.sim.set_time(ts + MINUTE)
            o, h, low, c = candles.exact(i)
            self.runner.on_candle("BTC/USDT", ts, o, h, low, c, self.clock.now())

    def events(self, *names: str) -> list:
        found = []
        for n in read_log(self.trading):
            if n.topic.rsplit(".", 1)[-1] in names:
                found.append(self.trading.mapper.to_domain_event(n))
        return found


def assert_log_matches_the_exchange(world: LiveWorld) -> None:
    """Every trade the exchange made is in the log once, as it was made, and the realized
    P/L of every closed deal is what the exchange's ledger says those trades made."""
    ledger = world.sim.ledger()
    observed = world.events("TradeObserved")
    assert Counter(e.trade_id for e in observed) == Counter(
        str(t.trade_id) for t in ledger.trades)
    by_id = {str(t.trade_id): t for t in ledger.trades}
    for event in observed:
        trade = by_id[event.trade_id]
        assert (event.price, event.amount, event.fee, event.fee_currency,
                event.exchange_time_ms) == (trade.price, trade.qty, trade.commission,
                                            trade.commission_asset, trade.time_ms)
    assert all(n == 1 for n in world.sim.client_order_ids_seen().values())

    deal_of = {e.originator_id: e.deal_id for e in world.events("Submitted")}
    order_of_trade = {e.trade_id: e.originator_id for e in observed}
    closed = {e.originator_id: e for e in world.events("Closed")}
    assert closed, "no deal closed"
    exchange_pnl = Counter()
    for trade in ledger.trades:
        deal = deal_of[order_of_trade[str(trade.trade_id)]]
        if deal in closed:
            flow = trade.quote_qty if trade.side == "SELL" else -trade.quote_qty
            fee = trade.commission if trade.commission_asset == "USDT" else Decimal(0)
            exchange_pnl[deal] += flow - fee
    assert {d: e.realized_pnl for d, e in closed.items()} == dict(exchange_pnl)


def test_a_live_bot_trades_on_the_exchange_and_its_log_equals_the_exchange_ledger(
        tmp_path, candles):
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'live.sqlite'}", sim)
        world.feed(candles, 0, 500)
        assert len(world.events("Closed")) >= 3
        # fees as Binance charges them: a buy's in BTC (what the deal holds is less), a
        # sell's in USDT; a sell of what the step size allows leaves dust, recorded
        fees = {e.fee_currency for e in world.events("TradeObserved")}
        assert fees == {"BTC", "USDT"}
        assert world.events("DustLeft")
        assert not world.events("Filled", "Accepted")  # the paper venue's words, not live
        assert_log_matches_the_exchange(world)
        world.trading.close()


def test_fills_made_while_the_runner_was_down_are_recorded_at_the_exchange_time(
        tmp_path, candles):
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'down.sqlite'}", sim)
        # run until a deal rests a safety order that the next hour's market reaches, then
        # stop the runner
        i = 0
        while True:
            world.feed(candles, i, i + 1)
            i += 1
            resting = [float(o.price) for o in
                       world.runner.engines_of(str(world.account))[0].orders.values()
                       if o.price is not None and str(o.side) == "buy"]
            if resting and float(candles.low[i:i + 60].min()) < max(resting):
                break
        known = len(world.events("TradeObserved"))
        world.trading.close()
        # the market moves on while nobody watches: the exchange fills what rests
        down_from = i
        while len(sim.ledger().trades) == known and i < down_from + 2000:
            sim.set_time(int(candles.timestamps[i]) + MINUTE)
            i += 1
        assert len(sim.ledger().trades) > known, "no order filled while the runner was down"
        world.restart("live-after-restart")
        fills = world.events("TradeObserved")[known:]
        assert fills and all(e.exchange_time_ms <= sim.now_ms() for e in fills)
        assert min(e.exchange_time_ms for e in fills) < sim.now_ms()
        world.feed(candles, i, i + 300)
        assert_log_matches_the_exchange(world)
        world.trading.close()


def test_reconciliation_cancels_a_stray_order_and_shows_drift(tmp_path, candles):
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'stray.sqlite'}", sim)
        i = 0
        while world.runner.engines_of(str(world.account))[0].deal is None or not (
                world.runner.engines_of(str(world.account))[0].deal.units):
            world.feed(candles, i, i + 1)
            i += 1
        # an order with our prefix the log does not know (another copy on the same keys)
        venue = world.runner.live_markets()[0][2]
        client = venue.exchange.client
        client.create_order("BTC/USDT", "limit", "buy", "0.001", "10000",
                            {"clientOrderId": "tt" + "0" * 32})
        reconciler = Reconciler(world.runner)
        reconciler.run(T0)
        stray = world.events("StrayOrderFound")
        assert [e.client_order_id for e in stray] == ["0" * 32]
        assert not [o for o in client.fetch_open_orders("BTC/USDT")
                    if o["clientOrderId"] == "tt" + "0" * 32]
        status, detail = reconciler.health()
        assert status == "green"
        # the account's BTC leaves the exchange outside Tradetape: the deals hold more
        held = world.runner.engines_of(str(world.account))[0].deal.units
        client.create_order("BTC/USDT", "market", "sell",
                            str(held.quantize(Decimal("0.00001"), rounding=ROUND_DOWN)))
        reconciler.run(T0 + timedelta(minutes=1))  # seen once: a race, maybe
        reconciler.run(T0 + timedelta(minutes=2))  # still short a round later: drift
        drift = world.events("DriftDetected")
        assert [(e.asset, e.expected) for e in drift] == [("BTC", held)]
        status, detail = reconciler.health()
        assert status == "amber"
        assert detail["accounts"][str(world.account)]["status"] == "drift"
        world.trading.close()


def test_a_safety_order_below_the_exchange_minimum_is_named_on_the_deal_and_the_bot(
        tmp_path, candles):
    from application.settings import parse_database_url
    from projections.frontend import FE_BOTS, FrontEnd
    from projections.runner import Projector
    from projections.store import open_view_store

    url = f"sqlite:///{tmp_path / 'minimum.sqlite'}"
    with running_simulator(speed=0) as sim:
        world = LiveWorld(url, sim, config={**BOT, "safety_order_quote": "4"})
        world.feed(candles, 0, 2)
        rejected = world.events("OrderRejected")
        assert [e.safety_order for e in rejected] == [1]
        assert rejected[0].reason.startswith("ORDER_BELOW_MIN_NOTIONAL:")
        # the deal goes on: its other safety orders (6 and 9 USDT) rest on the exchange
        assert [o.safety_order for o in world.runner.engines_of(str(world.account))[0]
                .orders.values()] == [2, 3]
        world.trading.close()
    store = open_view_store(parse_database_url(url))
    trading = open_trading(url)
    Projector(trading, store, [FrontEnd()]).catch_up()
    [bot] = store.select(FE_BOTS)
    assert bot["warning"].startswith("safety order 1 cannot be placed: ORDER_BELOW_MIN_NOTIONAL")
    assert bot["status"] == "running"
    trading.close()
    store.close()

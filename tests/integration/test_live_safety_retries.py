"""A live deal's safety order the exchange refused is placed again (a new client id) after
a backoff counted in steps, each refusal one line (``SAFETY_ORDER_REFUSED``); after
``SAFETY_ATTEMPTS`` refusals of one level it is handed to a person once
(``ORDER_NEEDS_ATTENTION``). Before, the deal ran with fewer safety orders than its plan
for good. Through the real ccxt binance class against the local exchange simulator."""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import timedelta

from adapters.clock import SequentialIds, SteppingClock
from adapters.exchanges.client_ids import client_order_id_for
from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_trading
from application.leased_paper import LeasedPaperTrading
from application.replay import read_log
from application.safety_retries import SAFETY_ATTEMPTS
from domain.accounts import AccountKind
from domain.dca import DcaConfig
from domain.orders import OrderPurpose
from tests.exchange_simulator import running_simulator
from tests.exchange_simulator.venues import simulator_venue
from tests.integration.test_live_cancels import candles
from tests.integration.test_live_trading import BOT, MINUTE, T0, LiveWorld
from tests.integration.test_risk_pause_leased import expire

__all__ = ["candles"]  # (the module's candles fixture)
HOLDS = {**BOT, "take_profit_pct": "40"}  # the first deal stays open while the test looks
REFUSED = re.compile(r"safety order (\d) of deal [0-9a-f-]+: refused \((\d) of \d\), "
                     r"SAFETY_ORDER_REFUSED")
ATTENTION = re.compile(r"safety order (\d) of deal .*\(ORDER_NEEDS_ATTENTION\)")


def refuse_from_the_second_request(world: LiveWorld, times: int) -> None:
    """The base order goes through; from the next order request on (the first safety
    order's), the exchange refuses ``times`` order requests."""
    venue = next(iter(world.runner._markets.values())).venue
    ahead, sent = venue.before_request, []

    def before() -> None:
        ahead()
        sent.append(None)
        if len(sent) == 2:
            world.sim.refuse(method="POST", times=times)
    venue.before_request = before


def safety_submitted(world: LiveWorld) -> Counter:
    """Safety orders submitted for the first deal, by level."""
    orders = [e for e in world.events("Submitted") if e.purpose is OrderPurpose.SAFETY]
    first = orders[0].deal_id
    return Counter(e.safety_order for e in orders if e.deal_id == first)


def test_a_refused_safety_order_is_placed_again(tmp_path, candles, caplog):
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'once.sqlite'}", sim, config=HOLDS)
        refuse_from_the_second_request(world, times=1)
        with caplog.at_level(logging.WARNING, logger="tradetape.engine"):
            world.feed(candles, 0, 4)
        assert safety_submitted(world) == Counter({1: 2, 2: 1, 3: 1})
        lines = [m.groups() for r in caplog.records if (m := REFUSED.search(r.getMessage()))]
        assert lines == [("1", "1")]
        assert world.trading.get_bot(world.bot_id).open_deal_id is not None  # (still open)
        resting = [o for o in sim.ledger().orders if o["status"] == "NEW" and o["side"] == "BUY"]
        assert len(resting) == 3  # the plan's three safety orders rest on the exchange
        world.trading.close()


def test_a_safety_order_refused_again_and_again_is_handed_to_a_person(tmp_path, candles,
                                                                       caplog):
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'always.sqlite'}", sim, config=HOLDS)
        refuse_from_the_second_request(world, times=10_000)
        with caplog.at_level(logging.WARNING, logger="tradetape.engine"):
            world.feed(candles, 0, 40)
        # each level sent SAFETY_ATTEMPTS times, over 1 + 2 + 4 + 8 steps, then no more
        assert safety_submitted(world) == Counter(dict.fromkeys((1, 2, 3), SAFETY_ATTEMPTS))
        handed = Counter(m[1] for r in caplog.records
                         if (m := ATTENTION.search(r.getMessage())))
        assert handed == Counter({"1": 1, "2": 1, "3": 1})
        assert all(r.levelno == logging.ERROR for r in caplog.records
                   if ATTENTION.search(r.getMessage()))
        assert world.trading.get_bot(world.bot_id).status.name == "RUNNING"
        world.trading.close()


def test_a_restart_sends_again_the_levels_the_log_says_were_refused(tmp_path, candles):
    """The first two safety orders refused, then the runner restarted before their retry:
    the restarted runner counts the refusals from the log and sends both again at its
    first step (before, a refused level counted as placed: the deal kept one of three)."""
    with running_simulator(speed=0) as sim:
        world = LiveWorld(f"sqlite:///{tmp_path / 'restart.sqlite'}", sim, config=HOLDS)
        refuse_from_the_second_request(world, times=2)
        world.feed(candles, 0, 1)
        assert safety_submitted(world) == Counter({1: 1, 2: 1, 3: 1})
        world.restart("again")
        world.feed(candles, 1, 4)
        assert safety_submitted(world) == Counter({1: 2, 2: 2, 3: 1})
        resting = [o for o in sim.ledger().orders if o["status"] == "NEW" and o["side"] == "BUY"]
        assert len(resting) == 3
        world.trading.close()


class LiveWorker:
    """An engine worker (``serve --role engine`` on PostgreSQL) with live venues on the
    simulator."""

    def __init__(self, url: str, name: str, sim):
        from application.bootstrap import open_engine_leases
        from application.settings import parse_database_url

        self.trading = open_trading(url, clock=SteppingClock(T0, timedelta(seconds=1)),
                                    ids=SequentialIds(name))
        self.paper = LeasedPaperTrading(
            self.trading, self.trading.ids,
            lambda pair, q, b: PaperExchange(pair, quote_balance=q),
            live_venues=lambda account, pair: simulator_venue(sim, str(account.id), pair))
        self.leases = open_engine_leases(parse_database_url(url), self.trading, self.paper,
                                         seconds=60, worker=name)
        self.leases.store.join(60)

    def feed(self, sim, candles, minutes: range) -> None:
        for i in minutes:
            ts = int(candles.timestamps[i])
            sim.set_time(ts + MINUTE)
            o, h, low, c = candles.exact(i)
            self.paper.on_candle("BTC/USDT", ts, o, h, low, c, T0 + timedelta(minutes=i))

    def close(self) -> None:
        self.leases.store.leave()
        self.trading.close()


def test_a_worker_that_loses_its_lease_mid_ladder_sends_nothing_more(candles, postgres_url):
    """The worker's lease of a live bot is taken by another worker between its base order
    and its first safety order (a pause longer than the lease): its write-ahead of the
    safety order is refused (LEASE_LOST) and the order never leaves; the new holder places
    the ladder from the log. Every level rests once on the exchange, every order there is
    in the log. Before, the old worker sent its three safety orders anyway, unrecorded,
    and the new one the same three again: six resting buys for a plan of three."""
    seeding = open_trading(postgres_url, clock=SteppingClock(T0, timedelta(seconds=1)),
                           ids=SequentialIds("seed"))
    with running_simulator(speed=0) as sim:
        account = seeding.open_account(owner_id="u1", exchange="binance", quote_asset="USDT",
                                       kind=AccountKind.LIVE)
        bot_id = seeding.create_bot(owner_id="u1", name="live bot",
                                    config=DcaConfig.from_mapping(HOLDS),
                                    exchange_account_id=str(account))
        seeding.start_bot(bot_id, actor="u1")
        seeding.close()
        one = LiveWorker(postgres_url, "one", sim)
        two = LiveWorker(postgres_url, "two", sim)
        try:
            one.leases.tick()
            assert one.paper.bot_ids == {bot_id}
            venue = next(iter(one.paper._markets.values())).venue
            ahead, sent = venue.before_request, []

            def before() -> None:
                sent.append(None)
                if len(sent) == 2:  # the first safety order's: the lease is gone by now
                    expire(postgres_url, bot_id)
                    two.leases.tick()
                ahead()
            venue.before_request = before
            one.feed(sim, candles, range(1))
            assert two.paper.bot_ids == {bot_id}
            two.feed(sim, candles, range(1, 3))
            resting = [o for o in sim.ledger().orders
                       if o["status"] == "NEW" and o["side"] == "BUY"]
            assert len(resting) == 3
            logged = {e.client_order_id for e in events_of(postgres_url, "Submitted")}
            on_exchange = {o["clientOrderId"] for o in sim.ledger().orders}
            assert {client_order_id_for(c, "binance") for c in logged} >= on_exchange
            assert not events_of(postgres_url, "ErrorRaised")  # no bot failed for it
        finally:
            one.close()
            two.close()


def events_of(url: str, name: str) -> list:
    trading = open_trading(url)
    try:
        return [trading.mapper.to_domain_event(n) for n in read_log(trading)
                if n.topic.rsplit(".", 1)[-1] == name]
    finally:
        trading.close()

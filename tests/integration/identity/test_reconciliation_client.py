"""The server's live venues give the reconciliation (its own thread) a ccxt client of its
own for each account, never the trading step's: its own HTTP session and rate limiter, the
same keys, the nonces of both drawn from the key's one source. Both asked at once from two
threads, through the real ccxt binance class against the local exchange simulator: no
request lost, no two signed with the same nonce. The reconciler asks through it."""

from __future__ import annotations

import gc
import weakref

import pytest

from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_live_venues
from application.paper_trading import PaperTrading
from application.reconciliation import Reconciler
from tests.exchange_simulator import running_simulator
from tests.integration.identity.test_exchange_accounts import accounts_on
from tests.integration.test_one_key_two_threads import ROUNDS, hammer

pytestmark = pytest.mark.timeout(120)


def live_account(world, sim):
    """Alice's sandbox account on the simulator, and the server's live venues."""
    alice = world.register_verified()
    accounts = accounts_on(world, sim.url)
    added = accounts.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                         secret=sim.secret)
    return added, open_live_venues(accounts, environ={"TRADETAPE_SANDBOX_HOST": sim.url})


def test_the_reconciliation_asks_through_a_client_of_its_own(open_world, tmp_path) -> None:
    world = open_world(f"sqlite:///{tmp_path / 'events.sqlite'}")
    with running_simulator(speed=0) as sim:
        added, venues = live_account(world, sim)
        trading = venues(world.identity.trading.get_account(added.id), "BTC/USDT").exchange
        reconciling = venues.reconciliation_exchange(str(added.id))
        assert venues.reconciliation_exchange(str(added.id)) is reconciling  # one per account
        assert reconciling.client is not trading.client
        assert reconciling.client.session is not trading.client.session

        runner = PaperTrading(world.identity.trading, world.identity.trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=venues)
        with runner.lock:
            runner.desk(str(added.id), "BTC/USDT")  # the account's live market, opened
        reconciler = Reconciler(runner)
        reconciler.run(world.clock.current)
        assert reconciler.health()[0] == "green"
        assert "/account" in reconciling.client.last_request_url  # its balances, asked
        assert trading.client.last_request_url is None  # by the reconciliation's client
        for exchange in (trading, reconciling):
            exchange.client.rateLimit = 1  # the simulator sets no weight limit
            exchange.market_rules("BTC/USDT")
        signed = len(sim.server.nonces)
        assert hammer(trading, reconciling) == []
        nonces = sim.server.nonces[signed:]
        assert len(nonces) == 2 * ROUNDS
        assert len(set(nonces)) == len(nonces)


def test_the_clients_of_an_account_no_longer_traded_are_let_go(open_world, tmp_path) -> None:
    """An account with no live market on this runner (its bots stopped, or it was removed)
    keeps no client (nor its keys) in the venues: the reconciliation's round lets them go.
    Asked for again, it gets a new one, signing above the nonces the key signed before."""
    world = open_world(f"sqlite:///{tmp_path / 'events.sqlite'}")
    with running_simulator(speed=0) as sim:
        added, venues = live_account(world, sim)
        first = venues.reconciliation_exchange(str(added.id))
        first.client.rateLimit = 1
        first.fetch_balance()
        signed = sim.server.nonces[-1]
        let_go = weakref.ref(first.client)
        runner = PaperTrading(world.identity.trading, world.identity.trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=venues)
        Reconciler(runner).run(world.clock.current)  # no live market here: nothing traded
        del first
        gc.collect()
        assert let_go() is None  # the client, its session and keys: gone
        again = venues.reconciliation_exchange(str(added.id))
        again.client.rateLimit = 1
        again.fetch_balance()
        assert sim.server.nonces[-1] > signed


def keys_held(sim) -> int:
    """ccxt clients in memory that hold the account's key."""
    import ccxt

    gc.collect()
    return sum(1 for o in gc.get_objects()
               if isinstance(o, ccxt.Exchange) and o.apiKey == sim.api_key)


def test_an_accounts_rules_are_read_with_no_keys_and_keep_none(open_world, tmp_path) -> None:
    """The api shows an account's exchange rules (forms, a bot's checks) through a client
    with no keys per exchange: it asks no signed request and keeps no key for them (it
    kept a client with the account's keys for good: only a reconciliation round, which the
    api never runs, let it go)."""
    world = open_world(f"sqlite:///{tmp_path / 'events.sqlite'}")
    with running_simulator(speed=0) as sim:
        added, venues = live_account(world, sim)
        before, signed = keys_held(sim), len(sim.server.nonces)
        account = world.identity.trading.get_account(added.id)
        rules = venues.market_rules(account, "BTC/USDT")
        assert rules is not None and rules.amount_step > 0
        assert len(sim.server.nonces) == signed  # nothing signed
        assert keys_held(sim) == before


def test_the_api_lets_go_of_the_clients_of_accounts_it_no_longer_trades(
        open_world, tmp_path) -> None:
    """The api's schedule does what the reconciliation's round does on an engine: the
    client (and keys) of an account with no live market here any more is let go."""
    from adapters.clock import SettableClock
    from application.bootstrap import _clients_schedule

    world = open_world(f"sqlite:///{tmp_path / 'events.sqlite'}")
    with running_simulator(speed=0) as sim:
        added, venues = live_account(world, sim)
        runner = PaperTrading(world.identity.trading, world.identity.trading.ids,
                              lambda pair, q, b: PaperExchange(pair, quote_balance=q),
                              live_venues=venues)
        venue = venues(world.identity.trading.get_account(added.id), "BTC/USDT")
        let_go = weakref.ref(venue.exchange.client)
        schedule = _clients_schedule(runner, 60, SettableClock(world.clock.current))
        with runner.lock:
            runner.desk(str(added.id), "BTC/USDT")  # a position's market, open here
        del venue
        schedule.run_once()
        gc.collect()
        assert let_go() is not None  # still traded: kept
        with runner.lock:
            runner._markets.clear()  # its positions ended, the market closed
        schedule.run_once()
        gc.collect()
        assert let_go() is None
        assert schedule.health.report()["status"] == "green"

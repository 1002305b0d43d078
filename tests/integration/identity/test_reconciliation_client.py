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

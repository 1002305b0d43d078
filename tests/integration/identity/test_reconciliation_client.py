"""The server's live venues give the reconciliation (its own thread) a ccxt client of its
own for each account, never the trading step's: its own HTTP session and rate limiter, the
same keys, the nonces of both drawn from the key's one source. Both asked at once from two
threads, through the real ccxt binance class against the local exchange simulator: no
request lost, no two signed with the same nonce. The reconciler asks through it."""

from __future__ import annotations

import pytest

from adapters.exchanges.paper import PaperExchange
from application.bootstrap import open_live_venues
from application.paper_trading import PaperTrading
from application.reconciliation import Reconciler
from tests.exchange_simulator import running_simulator
from tests.integration.identity.test_exchange_accounts import accounts_on
from tests.integration.test_one_key_two_threads import ROUNDS, hammer

pytestmark = pytest.mark.timeout(120)


def test_the_reconciliation_asks_through_a_client_of_its_own(open_world, tmp_path) -> None:
    world = open_world(f"sqlite:///{tmp_path / 'events.sqlite'}")
    alice = world.register_verified()
    with running_simulator(speed=0) as sim:
        accounts = accounts_on(world, sim.url)
        added = accounts.add(alice, exchange="binance", sandbox=True, api_key=sim.api_key,
                             secret=sim.secret)
        venues = open_live_venues(accounts, environ={"TRADETAPE_SANDBOX_HOST": sim.url})
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

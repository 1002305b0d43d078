"""One exchange key, two threads at once: the live venue's client (a trading step) and the
reconciliation's (its own thread), as the server builds them, through the real ccxt
binance class against the local exchange simulator. Each has its own HTTP session and rate
limiter; the nonces they sign never collide (strictly increasing in the order they were
signed); an exchange that takes a key's requests only in increasing nonce order (the
simulator told to refuse any other, as Kraken refuses an "Invalid nonce") gets them one at
a time, so it receives them strictly increasing and refuses none; no request is lost."""

from __future__ import annotations

import threading

import pytest

from tests.exchange_simulator import running_simulator

pytestmark = pytest.mark.timeout(120)
ROUNDS = 40  # requests of each thread


def client_of(sim, serialize: bool | None):
    from adapters.exchanges.ccxt_client import open_client
    from adapters.exchanges.ccxt_venue import CcxtExchange
    from domain.ports import ApiCredentials

    client = open_client("binance", sandbox=True, sandbox_host=sim.url,
                         credentials=ApiCredentials(sim.api_key, sim.secret),
                         serialize=serialize)
    client.rateLimit = 1  # the simulator sets no weight limit (as tests' venues do)
    return CcxtExchange(client, sandbox=True, sandbox_host=sim.url, resend_unknown=False)


def hammer(trading, reconciling) -> list[BaseException]:
    """Both clients ask the exchange ROUNDS times each, from two threads started at once
    (a trading step's order lookups; the reconciliation's open orders and balances)."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def step() -> None:
        start.wait()
        for _ in range(ROUNDS):
            trading.fetch_open_orders("BTC/USDT")

    def reconcile() -> None:
        start.wait()
        for i in range(ROUNDS):
            (reconciling.fetch_balance if i % 2 else
             lambda: reconciling.fetch_open_orders("BTC/USDT"))()

    def guarded(work):
        def run() -> None:
            try:
                work()
            except BaseException as error:  # the test reports it
                errors.append(error)
        return run

    threads = [threading.Thread(target=guarded(w)) for w in (step, reconcile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


@pytest.mark.parametrize("strict", [False, True], ids=["receive-window", "strict-nonces"])
def test_two_clients_of_one_key_on_two_threads_never_collide(strict):
    with running_simulator(speed=0) as sim:
        trading, reconciling = client_of(sim, strict or None), client_of(sim, strict or None)
        trading.market_rules("BTC/USDT")  # markets loaded (public: no nonce)
        reconciling.market_rules("BTC/USDT")
        assert trading.client.session is not reconciling.client.session
        sim.server.strict_nonces = strict
        signed = len(sim.server.nonces)
        assert hammer(trading, reconciling) == []
        nonces = sim.server.nonces[signed:]
        assert len(nonces) == 2 * ROUNDS  # every request arrived once, none refused
        assert sim.server.nonces_refused == 0
        assert len(set(nonces)) == len(nonces)  # no two requests signed the same nonce
        if strict:  # in the order the exchange demands
            assert nonces == sorted(nonces)

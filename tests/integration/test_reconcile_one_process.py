"""On PostgreSQL each live account is reconciled by one process at a time: engine workers
that trade bots of the same account (each the bots it leases) would otherwise each record
the account's balances, each its own copy, and each cancel the same stray order. The other
process takes the account over once the first lets go (stops, or dies: its connection's
locks go with it). Two reconcilers, each with its turns on a connection of its own as two
processes have, on the real ccxt client against the local exchange simulator."""

from __future__ import annotations

import pytest

from adapters.event_store.task_board import PostgresTaskLock
from application.reconciliation import Reconciler
from application.settings import parse_database_url
from tests.exchange_simulator import running_simulator
from tests.integration.test_live_trading import LiveWorld, candles  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def test_one_process_reconciles_an_account_until_it_lets_go(postgres_url, candles):  # noqa: F811
    database = parse_database_url(postgres_url)
    with running_simulator(speed=0) as sim:
        world = LiveWorld(postgres_url, sim)
        world.feed(candles, 0, 2)  # the bot trades on the exchange: balances to observe
        first_turns = PostgresTaskLock(database, "reconciliation")
        second_turns = PostgresTaskLock(database, "reconciliation")
        first = Reconciler(world.runner, turns=first_turns)
        second = Reconciler(world.runner, turns=second_turns)
        account = str(world.account)
        try:
            first.run(world.clock.now())
            observed = len(world.events("BalanceObserved"))
            assert observed > 0 and account in first.accounts
            second.run(world.clock.now())  # the first one's account: not this one's
            assert second.accounts == {}
            assert len(world.events("BalanceObserved")) == observed  # no second copy

            first_turns.release()  # the first process stops
            taken_at = world.clock.now()
            second.run(taken_at)
            assert second.accounts[account].status == "ok"
            assert second.accounts[account].checked_at == taken_at
            first.run(world.clock.now())  # and now the first waits its turn
            assert account not in first.accounts
        finally:
            first_turns.release()
            second_turns.release()
            world.trading.close()
